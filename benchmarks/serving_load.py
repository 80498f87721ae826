"""Overload: does `t2i serve` keep answering small requests while clients flood it?

    python benchmarks/serving_load.py                       # the shipped model, 60 s of load
    python benchmarks/serving_load.py --seconds 20 --json out/load.json

Exports the shipped model (or `--run`), starts `t2i serve` with its default bounds
(`python -m serving.server`, gRPC and REST) on free localhost ports, and then:

1. idle: a few small requests, then the server's resident memory (VmRSS);
2. load: `--clients` threads (default 8) send the largest batch the server accepts
   (`--batch`, default its --max_batch_size), half over gRPC and half over REST, back to back,
   for `--seconds`; meanwhile a probe sends a one-caption gRPC request every 0.25 s and
   records how long its answer took and what it was (images, RESOURCE_EXHAUSTED / 429, other);
3. after: the load stops, the server is left idle for `--settle` seconds, and its memory is
   read again.

The issue-24 floors: every probe answered (images or RESOURCE_EXHAUSTED) within 2 s, no
other outcome, and memory after the load within 200 MB of the idle figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CAPTION = "the digit 7 is on the left of the digit 1 ."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a trained run (default: the shipped model)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--batch", type=int, default=0, help="examples per load request (default: "
                                                         "the server's --max_batch_size)")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--settle", type=float, default=10.0)
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra `t2i serve` flag, e.g. --server-arg=--max_concurrent_requests=0")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    import grpc

    from export.export_savedmodel import export_model
    from serving import client
    from serving.server import DEFAULT_MAX_BATCH_SIZE

    batch = args.batch or DEFAULT_MAX_BATCH_SIZE
    work = Path(tempfile.mkdtemp(prefix="t2i-serving-load-"))
    export_model(args.run, work / "t2i")
    port, rest_port = _free_port(), _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--port", str(port), "--rest_api_port",
         str(rest_port), "--model_name", "t2i", "--model_base_path", str(work / "t2i")]
        + args.server_arg, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "clients": args.clients, "batch": batch, "seconds": args.seconds,
               "server_args": args.server_arg}
    try:
        target = f"127.0.0.1:{port}"
        client.wait_until_available(target, "t2i", timeout_s=300)
        channel = client.make_channel(target)
        for i in range(5):
            client.predict(channel, [CAPTION] * 4, seeds=range(4), timeout_s=60)
        client.rest_predict(f"http://127.0.0.1:{rest_port}", [CAPTION], seeds=[0])
        time.sleep(2)
        results["rss_idle_mb"] = _rss_mb(server.pid)

        stop = threading.Event()
        load_outcomes: dict[str, int] = {}
        lock = threading.Lock()

        def flood(k: int):
            seeds = list(range(k * 1000, k * 1000 + batch))
            while not stop.is_set():
                try:
                    if k % 2 == 0:
                        client.predict(channel, [CAPTION] * batch, seeds=seeds, timeout_s=30,
                                       retries=0)
                    else:
                        client.rest_predict(f"http://127.0.0.1:{rest_port}", [CAPTION] * batch,
                                            seeds=seeds, timeout_s=30, retries=0)
                    outcome = "ok"
                except client.ClientError as e:
                    outcome = e.code.name
                except client.RestError as e:
                    outcome = f"HTTP {e.status}"
                with lock:
                    load_outcomes[outcome] = load_outcomes.get(outcome, 0) + 1

        probes = []
        rss_peak = results["rss_idle_mb"]
        threads = [threading.Thread(target=flood, args=(k,), daemon=True)
                   for k in range(args.clients)]
        for t in threads:
            t.start()
        end = time.monotonic() + args.seconds
        i = 0
        while time.monotonic() < end:
            start = time.monotonic()
            try:
                client.predict(channel, [CAPTION], seeds=[i], timeout_s=10, retries=0)
                outcome = "ok"
            except client.ClientError as e:
                outcome = e.code.name
            probes.append((time.monotonic() - start, outcome))
            rss_peak = max(rss_peak, _rss_mb(server.pid))
            i += 1
            time.sleep(max(0.0, 0.25 - (time.monotonic() - start)))
        stop.set()
        for t in threads:
            t.join(timeout=60)
        time.sleep(args.settle)
        results["rss_after_mb"] = _rss_mb(server.pid)
        results["rss_peak_mb"] = rss_peak
        latencies = np.array([s for s, _ in probes])
        kinds: dict[str, int] = {}
        for _, outcome in probes:
            kinds[outcome] = kinds.get(outcome, 0) + 1
        results.update(
            probes=len(probes), probe_outcomes=kinds,
            probe_latency_s={"p50": float(np.percentile(latencies, 50)),
                             "p99": float(np.percentile(latencies, 99)),
                             "max": float(latencies.max())},
            load_outcomes=load_outcomes)
        floors = {
            "every probe within 2 s": bool(latencies.max() <= 2.0),
            "probes only ok or RESOURCE_EXHAUSTED": set(kinds) <= {"ok", "RESOURCE_EXHAUSTED"},
            "memory back within 200 MB": results["rss_after_mb"] - results["rss_idle_mb"] <= 200,
        }
        results["floors"] = floors
        print(json.dumps(results, indent=2))
        channel.close()
    except grpc.RpcError as e:  # pragma: no cover - a benchmark run that could not start
        raise SystemExit(f"serving_load: {e}") from None
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
