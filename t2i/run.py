"""Run directories: what `t2i train` writes and `t2i generate` reads.

    runs/NAME/
      config.json                 the frozen ExperimentConfig, written before step 1
      run_info.json               where the data came from, held-out compositions, versions
      checkpoints/last.weights.h5 model weights after the latest epoch
      checkpoints/best.weights.h5 weights with the lowest validation loss
      backup/                     full training state for `--resume` (Keras BackupAndRestore)
      log.csv                     per-epoch metrics
      tensorboard/                TensorBoard logs
      samples/epoch-NNNN.png      sample grids for fixed seen and held-out captions

A *packed* run (`pack_run`) keeps only what generation needs, compactly:
config.json, run_info.json, log.csv, weights.npz (float16 model weights keyed
by variable path, no optimizer state) and whatever reports are copied beside.
The pretrained model shipped with t2i (`t2i/pretrained/mnist_captions/`) is
one; `load_model` reads packed and full runs alike, and `resolve_run(None)`
names the shipped one, so commands without `--run` use it.
"""

from __future__ import annotations

import json
from pathlib import Path

from t2i.config import ExperimentConfig
from t2i.errors import T2IError

CONFIG = "config.json"
RUN_INFO = "run_info.json"
CHECKPOINTS = ("last", "best")
PACKED_WEIGHTS = "weights.npz"
PRETRAINED_ROOT = Path(__file__).resolve().parent / "pretrained"
PRETRAINED = PRETRAINED_ROOT / "mnist_captions"  # the default model of every command


def shipped_models() -> list[str]:
    """Names of the models shipped in t2i/pretrained/ ("mnist_captions", ...)."""
    if not PRETRAINED_ROOT.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_ROOT.iterdir() if (p / CONFIG).is_file())


def resolve_run(run_dir) -> Path:
    """`run_dir`; the shipped MNIST model for None or "pretrained"; a shipped model by name
    for "pretrained:NAME" (`shipped_models()`)."""
    text = None if run_dir is None else str(run_dir)
    if text is None or text == "pretrained":
        if not (PRETRAINED / CONFIG).is_file():
            raise T2IError(f"the shipped pretrained model is missing ({PRETRAINED}); "
                           "name a run with --run")
        return PRETRAINED
    if text.startswith("pretrained:"):
        name = text.partition(":")[2]
        if name not in shipped_models():
            raise T2IError(f"no shipped model {name!r}; t2i ships: {', '.join(shipped_models()) or 'none'}")
        return PRETRAINED_ROOT / name
    return Path(run_dir)


def run_label(run_dir) -> str:
    """How reports name a run: the path as the user gave it; the shipped model by its place in the package.

    Never an absolute path of the machine that made the report (the shipped
    model is found by an absolute path, so it gets "t2i/pretrained/mnist_captions").
    """
    path = Path(run_dir)
    try:
        shipped = path.resolve().parent == PRETRAINED_ROOT.resolve()
    except OSError:
        shipped = False
    if shipped:
        return (PRETRAINED_ROOT.relative_to(PRETRAINED_ROOT.parents[1]) / path.resolve().name).as_posix()
    return str(run_dir)


def is_packed(run_dir) -> bool:
    return (Path(run_dir) / PACKED_WEIGHTS).is_file()


def checkpoint_path(run_dir, which: str = "last") -> Path:
    return Path(run_dir) / "checkpoints" / f"{which}.weights.h5"


def load_run_config(run_dir) -> ExperimentConfig:
    """The config of a run directory, or a `T2IError` saying why it is not one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise T2IError(f"run directory {run_dir} does not exist")
    if not (run_dir / CONFIG).is_file():
        raise T2IError(f"{run_dir} is not a t2i run directory (it has no {CONFIG})")
    return ExperimentConfig.load(run_dir / CONFIG)


def load_run_info(run_dir) -> dict:
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def load_model(run_dir=None, which: str = "last", loop: str | None = None):
    """(config, model with the checkpoint's weights) of a run directory.

    `run_dir` None or "pretrained" is the shipped model ("pretrained:NAME"
    another shipped one, `resolve_run`); a packed run has one
    set of weights, so `which` does not apply to it. `loop` overrides the
    config's `model.loop` (same weights; see `ModelConfig.loop`).
    """
    from t2i.model import AlignDRAW

    run_dir = resolve_run(run_dir)
    if which not in CHECKPOINTS:
        raise T2IError(f"checkpoint must be one of {CHECKPOINTS}, got {which!r}")
    config = load_run_config(run_dir)
    if loop is not None:
        config = config.override({"model.loop": loop})
    if is_packed(run_dir):
        model = AlignDRAW.from_config_dataclass(config)
        load_packed_weights(model, run_dir / PACKED_WEIGHTS)
        return config, model
    path = checkpoint_path(run_dir, which)
    if not path.is_file():
        raise T2IError(f"run {run_dir} has no {which} checkpoint yet ({path}); "
                       "train it for at least one epoch")
    model = AlignDRAW.from_config_dataclass(config)
    try:
        model.load_weights(str(path))
    except Exception as e:  # a truncated or foreign file
        raise T2IError(f"cannot load weights from {path}: {e}") from None
    return config, model


def load_packed_weights(model, path) -> None:
    """Assigns float16 weights saved by `pack_run` (cast to each variable's dtype)."""
    import numpy as np

    try:
        with np.load(path) as stored:
            arrays = {k: stored[k] for k in stored.files}
    except Exception as e:
        raise T2IError(f"cannot read packed weights {path}: {e}") from None
    variables = {_weight_key(v): v for v in model.weights}
    missing = sorted(set(variables) - set(arrays))
    extra = sorted(set(arrays) - set(variables))
    if missing or extra:
        raise T2IError(f"{path} does not fit this model: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, v in variables.items():
        if tuple(arrays[name].shape) != tuple(v.shape):
            raise T2IError(f"{path}: {name} has shape {arrays[name].shape}, the model wants {v.shape}")
        v.assign(arrays[name].astype(v.dtype))


def warm_start(model, source, which: str = "best") -> list[str]:
    """Initialises `model` from the weights of run `source` ("pretrained": the shipped model).

    Every variable of the source must exist in `model` with the same shape (the
    same architecture, possibly with additions such as a null caption); the
    model's extra variables keep their initial values. Returns their names.
    """
    _, src = load_model(source, which)
    have = {_weight_key(v): v for v in src.weights}
    variables = {_weight_key(v): v for v in model.weights}
    missing = sorted(set(have) - set(variables))
    if missing:
        raise T2IError(f"cannot start from {source}: this model lacks its variables {missing[:3]}")
    for name, v in have.items():
        if tuple(v.shape) != tuple(variables[name].shape):
            raise T2IError(f"cannot start from {source}: {name} has shape {tuple(v.shape)}, "
                           f"this model's is {tuple(variables[name].shape)}")
        variables[name].assign(v.value)
    return sorted(set(variables) - set(have))


def _weight_key(variable) -> str:
    """A variable's path without the model's own (uniquified) name."""
    return variable.path.split("/", 1)[-1]


def pack_run(run_dir, out_dir, which: str = "last", extra_files=()) -> Path:
    """Writes a packed copy of a run: float16 weights and the run's records.

    Args:
        run_dir: a full run directory.
        out_dir: the packed run's directory (created; replaced files overwritten).
        which: the checkpoint to pack.
        extra_files: more files to copy in (e.g. an evaluation report): paths as
            given, or inside the run; a missing one is an error before anything is written.
    """
    import shutil

    import numpy as np

    extras = []
    for name in extra_files:  # as given (absolute or from here), else inside the run
        src = Path(name) if Path(name).is_file() else Path(run_dir) / name
        if not src.is_file():
            raise T2IError(f"--extra {name}: no such file here or in {run_dir}")
        extras.append(src)
    config, model = load_model(run_dir, which)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {_weight_key(v): np.asarray(v.numpy(), np.float16) for v in model.weights}
    np.savez_compressed(out / PACKED_WEIGHTS, **arrays)
    config.save(out / CONFIG)
    info = load_run_info(run_dir)
    info["packed_from"] = {"run": str(run_dir), "checkpoint": which, "dtype": "float16"}
    (out / RUN_INFO).write_text(json.dumps(info, indent=2) + "\n")
    if (Path(run_dir) / "log.csv").is_file():
        shutil.copy(Path(run_dir) / "log.csv", out / "log.csv")
    for src in extras:
        shutil.copy(src, out / src.name)
    return out


def main(argv=None, prog: str = "python -m t2i.run") -> int:
    """`t2i pack RUN OUT [--checkpoint last|best] [--extra FILE ...]` (or `python -m t2i.run pack ...`)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog=prog, description="pack a run compactly")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="float16 weights + the run's records, e.g. for shipping")
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--checkpoint", default="last", choices=CHECKPOINTS)
    p.add_argument("--extra", nargs="*", default=[], help="more files to copy in (reports, figures)")
    args = parser.parse_args(argv)
    try:
        print(pack_run(args.run, args.out, args.checkpoint, args.extra))
    except T2IError as e:
        print(f"t2i: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
