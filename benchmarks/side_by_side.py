"""t2i against the public PyTorch port (vicissitude1999/text2image), side by side in one run.

Setup (once; the port and PyTorch live outside this repository):

    git clone https://github.com/vicissitude1999/text2image ../port      # or any path
    python3 -m venv ../torch-venv && ../torch-venv/bin/pip install torch==2.13.0 numpy

Run (from the repository root, with t2i's environment):

    python benchmarks/side_by_side.py --port ../port --torch-python ../torch-venv/bin/python \\
        --json docs/side-by-side.json

Both systems run at the paper's MNIST config (60x60, T = 32, LSTMs 300/300, latent 150, caption
LSTM 2x128, alignment 512) and batch 100, one after the other in rounds, so that they see the
same machine load (`uptime` is recorded around every measurement):

* training: `t2i train` as a user runs it (a subprocess of the `t2i` command on the bundled
  MNIST, short epochs of `--steps` steps), its steady-state speed taken from log.csv's
  `train_images_per_s` of the epochs after the first; against the port's own training step
  (`benchmarks/port_adapter.py train`, same steps per epoch, epochs after the first);
* generation: `t2i generate --captions-file` of `--captions` captions into an .npz, timed as a
  whole command (start-up included) and beyond start-up (the N-caption command's wall time
  less the one-caption command's: the rate of the generation itself); against the port's
  `generate` over the same number of captions (`port_adapter.py generate`, process start to end
  and generation alone);
* t2i's start: seconds from the `t2i train` start to its first finished training step (the
  command reports it), and the wall time of a cold `t2i generate` of one caption.

The port is run with PyTorch's default threads (one per core) and with one thread, and the
faster of the two is the baseline of every ratio (on a loaded machine PyTorch's OpenMP threads
can slow down many times over). Prints a Markdown table; `--json` also writes every figure.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAPTION = "the digit {} is on the left of the digit {} ."


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu() -> str:
    model, flags = platform.processor(), ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", text).group(1)
        have = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
        flags = ", ".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in have)
    except (OSError, AttributeError):
        pass
    return f"{model} x{os.cpu_count()} ({flags})"


def run(cmd, env=None) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}")
    return proc, wall


def t2i_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def t2i_train(tmp: Path, steps: int, epochs: int, extra=()) -> dict:
    out = tmp / f"run-{time.time_ns()}"
    before = load()
    proc, wall = run([sys.executable, "-m", "t2i_cli", "train", "--preset", "mnist_captions",
                      "--out", str(out), "--epochs", str(epochs), "--steps-per-epoch", str(steps),
                      "--data.mnist.source", "bundled", "--train.sample_every", "0", "--quiet",
                      *extra], env=t2i_env())
    rows = list(csv.DictReader(open(out / "log.csv")))
    first = re.search(r"first training step done ([\d.]+) s", proc.stderr)
    return {"train_images_per_s": [float(r["train_images_per_s"]) for r in rows],
            "epoch_time_s": [float(r["epoch_time_s"]) for r in rows],
            "first_step_s": float(first.group(1)) if first else None, "wall_s": wall,
            "load_before": before, "load_after": load(), "extra": list(extra)}


def t2i_generate(tmp: Path, captions: int) -> dict:
    path = tmp / "captions.txt"
    path.write_text("\n".join(CAPTION.format(i % 10, (i * 7) % 10) for i in range(captions)) + "\n")
    before = load()
    _, wall = run([sys.executable, "-m", "t2i_cli", "generate", "--captions-file", str(path),
                   "-o", str(tmp / "out.npz")], env=t2i_env())
    return {"captions": captions, "wall_s": wall, "images_per_s": captions / wall,
            "load_before": before, "load_after": load()}


def t2i_generate_one(tmp: Path) -> dict:
    before = load()
    _, wall = run([sys.executable, "-m", "t2i_cli", "generate", CAPTION.format(7, 1), "-o",
                   str(tmp / "one.png")], env=t2i_env())
    return {"wall_s": wall, "load_before": before, "load_after": load()}


def port(args, mode: str, threads: int, *extra) -> dict:
    before = load()
    proc, wall = run([args.torch_python, str(ROOT / "benchmarks" / "port_adapter.py"), "--port",
                      str(args.port), "--threads", str(threads), mode, *extra])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(wall_s=wall, load_before=before, load_after=load())
    return result


def mean(xs):
    return sum(xs) / len(xs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", required=True, type=Path, help="checkout of vicissitude1999/text2image")
    parser.add_argument("--torch-python", required=True, help="python of the PyTorch environment")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10, help="training steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (the first is warm-up)")
    parser.add_argument("--captions", type=int, default=2000, help="captions to generate")
    parser.add_argument("--port-threads", default="0,1",
                        help="PyTorch thread counts to run the port with (0: its default)")
    parser.add_argument("--t2i-extra", action="append", default=[],
                        help="another t2i training variant, as extra flags (e.g. '--model.loop unrolled')")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.port_threads.split(",")]
    variants = [()] + [tuple(v.split()) for v in args.t2i_extra]
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
               "machine": cpu(), "python": platform.python_version(), "command": sys.argv,
               "steps": args.steps, "epochs": args.epochs, "captions": args.captions, "rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for r in range(args.rounds):
            rnd = {"port_train": {}, "port_generate": {}, "t2i_train": []}
            for th in threads:
                rnd["port_train"][th] = port(args, "train", th, "--steps", str(args.steps),
                                             "--epochs", str(args.epochs))
                print(f"round {r}: port train threads={th}: {rnd['port_train'][th]}", file=sys.stderr)
            for v in variants:
                rnd["t2i_train"].append(t2i_train(tmp, args.steps, args.epochs, v))
                print(f"round {r}: t2i train {v}: {rnd['t2i_train'][-1]}", file=sys.stderr)
            for th in threads:
                rnd["port_generate"][th] = port(args, "generate", th, "--captions", str(args.captions))
                print(f"round {r}: port generate threads={th}: {rnd['port_generate'][th]}", file=sys.stderr)
            rnd["t2i_generate"] = t2i_generate(tmp, args.captions)
            rnd["t2i_generate_one"] = t2i_generate_one(tmp)
            print(f"round {r}: t2i generate: {rnd['t2i_generate']} one: {rnd['t2i_generate_one']}",
                  file=sys.stderr)
            results["rounds"].append(rnd)
            if args.json:  # after every round, so an interrupted run keeps what it measured
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    lines = [f"{results['date']}, {results['machine']}; paper MNIST config, batch 100; "
             f"{args.steps} steps per epoch, steady state = epochs 2-{args.epochs}; "
             f"{args.captions} captions generated.", "",
             "| round | load (1 min) | port train img/s (threads: " + ", ".join(map(str, threads)) +
             ") | t2i train img/s | ratio | port generate img/s: process / generation only | "
             "t2i generate img/s (whole command) | ratio (command / port process) | "
             "t2i generation img/s beyond start-up | ratio (/ port generation only) | "
             "t2i first step s | t2i one caption s |", "|" + "---|" * 12]
    for i, rnd in enumerate(results["rounds"]):
        pt = {th: mean(v["train_images_per_s"][1:]) for th, v in rnd["port_train"].items()}
        best_pt = max(pt.values())
        tt = [mean(v["train_images_per_s"][1:]) for v in rnd["t2i_train"]]
        pg = {th: (v["captions"] / v["wall_s"], v["generate_images_per_s"])
              for th, v in rnd["port_generate"].items()}
        best_pg = max(p[0] for p in pg.values())
        best_pg_only = max(p[1] for p in pg.values())
        tg = rnd["t2i_generate"]["images_per_s"]
        # The command's start-up (imports, loading, tracing) is what one caption costs:
        # the rest of the N-caption command is generation (and writing the .npz).
        extra_s = rnd["t2i_generate"]["wall_s"] - rnd["t2i_generate_one"]["wall_s"]
        tg_only = (args.captions - 1) / extra_s if extra_s > 0 else float("nan")
        rnd["summary"] = {"port_train": best_pt, "t2i_train": tt, "train_ratio": [t / best_pt for t in tt],
                          "port_generate_process": best_pg, "t2i_generate_command": tg,
                          "generate_ratio": tg / best_pg, "port_generate_only": best_pg_only,
                          "t2i_generate_beyond_startup": tg_only,
                          "generate_only_ratio": tg_only / best_pg_only}
        loads = [rnd["t2i_train"][0]["load_before"][0], rnd["t2i_generate"]["load_after"][0]]
        lines.append(
            f"| {i + 1} | {loads[0]}-{loads[1]} | " + " / ".join(f"{v:.1f}" for v in pt.values()) +
            " | " + " / ".join(f"{t:.1f}" for t in tt) + " | " +
            " / ".join(f"{t / best_pt:.2f}x" for t in tt) + " | " +
            " ; ".join(f"{a:.0f} / {b:.0f}" for a, b in pg.values()) + f" | {tg:.0f} | "
            f"{tg / best_pg:.2f}x | {tg_only:.0f} | {tg_only / best_pg_only:.2f}x | " + " / ".join(f"{v['first_step_s']:.1f}" for v in rnd["t2i_train"]) +
            f" | {rnd['t2i_generate_one']['wall_s']:.1f} |")
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
