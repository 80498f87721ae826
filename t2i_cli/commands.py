"""The `t2i` command.

    t2i train --preset mnist_captions --out runs/mnist [--epochs 20] [--steps-per-epoch 100]
              [--model.num_steps 16 --train.learning_rate 3e-4 ...] [--resume]
    t2i generate "the digit 7 is on the left of the digit 1 ." -o out.png   # the shipped model
    t2i generate --run runs/mnist "the digit 7 is on the left of the digit 1 ." -o out.png
              [--samples 8] [--seed 0] [--gif] [--alignment] [--checkpoint best]
    t2i generate --run runs/mnist --captions-file captions.txt -o out.npz
    t2i evaluate --run runs/mnist -o report/ [--examples 1000] [--samples 50]
    t2i sharpen train --run runs/mnist [--steps 1000] [--batch-size 64]
    t2i generate --run runs/mnist --sharpen "the digit 7 is on the left of the digit 1 ." -o out.png
    t2i export --run runs/mnist --out models/t2i [--version N]
    t2i serve --model_name t2i --model_base_path models/t2i --port 8500
    t2i client --target localhost:8500 "the digit 3 is at the top of the digit 1 ." -o out.png
    t2i demo [--run runs/mnist | --server localhost:8500] [--port 7860]   # web page (Gradio)
    t2i slides --run runs/scenes -o docs/slides    # the slides' colour figures from a scenes run

Every config field is a flag (`--section.field value`); `t2i train --help`
lists them. Bad input ends with one line, `t2i: error: ...`, and status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

from t2i.errors import T2IError, add_deprecated_alias

_SHORTCUTS = {"epochs": "train.epochs", "steps_per_epoch": "train.steps_per_epoch",
              "batch_size": "train.batch_size", "coco_root": "data.coco.root",
              "validation_examples": "data.validation_examples"}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    from t2i.config import LEGACY_DATA_FIELDS, field_types

    group = parser.add_argument_group("config fields (override the preset)")
    for key, hint in sorted(field_types().items()):
        kind = getattr(hint, "__name__", None) or str(typing.get_args(hint)[0].__name__) + ",..."
        group.add_argument(f"--{key}", dest=f"cfg:{key}", metavar=kind.upper(), default=None,
                           help=argparse.SUPPRESS if key == "name" else None)
    for old, new in LEGACY_DATA_FIELDS.items():  # the flat data fields before the per-dataset sections
        add_deprecated_alias(group, f"--data.{old}", f"--data.{new}", dest=f"cfg:data.{new}")


def _parser() -> argparse.ArgumentParser:
    from t2i import __version__

    parser = argparse.ArgumentParser(prog="t2i", description="alignDRAW text-to-image generation.")
    parser.add_argument("--version", action="version", version=f"t2i {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model (or resume a run)")
    p.add_argument("--preset", default="mnist_captions", help="mnist_captions (default), coco_32, tiny")
    p.add_argument("--config", help="a config.json to start from instead of a preset")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/mnist")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its backup")
    p.add_argument("--epochs", type=int, help="= --train.epochs")
    p.add_argument("--steps-per-epoch", type=int, help="= --train.steps_per_epoch")
    p.add_argument("--batch-size", type=int, help="= --train.batch_size")
    p.add_argument("--validation-examples", type=int,
                   help="= --data.validation_examples: composites validated every epoch (default "
                        "10,000; a run with a shorter --steps-per-epoch validates a tenth of the "
                        "examples it trains on, at least 1,000)")
    p.add_argument("--coco-root", help="= --data.coco.root: the COCO folder (annotations/, train2014/, val2014/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (one line per epoch)")
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                   help="TensorFlow backend: tf.distribute strategy (mirrored: all local GPUs; "
                        "multiworker: the cluster in TF_CONFIG). JAX backend: data parallel over "
                        "all local devices whenever there are several")
    p.add_argument("--time-limit", type=float, metavar="MINUTES",
                   help="stop after the last epoch that fits in this many minutes (resumable)")
    _add_config_flags(p)

    g = sub.add_parser("generate", help="generate images for captions")
    g.add_argument("--run", help="a run directory written by `t2i train`, or pretrained:NAME for a model t2i ships (default: the shipped MNIST-with-captions model)")
    g.add_argument("captions", nargs="*", help="captions, e.g. \"the digit 3 is at the top of the digit 1 .\"")
    g.add_argument("--captions-file", help="one caption per line")
    g.add_argument("-o", "--out", required=True, help="out.png (grid) or out.npz (arrays)")
    g.add_argument("--samples", type=int, default=8, help="samples per caption in a PNG (default 8)")
    g.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    g.add_argument("--gif", action="store_true", help="also write an animation of the canvas")
    g.add_argument("--alignment", action="store_true", help="also write word-attention heatmaps")
    g.add_argument("--temperature", type=float, default=1.0,
                   help="scale of the prior's noise: 1 samples the model (default), 0 draws the "
                        "prior means, between trades diversity for fidelity")
    g.add_argument("--guidance", type=float, default=1.0,
                   help="classifier-free guidance scale for a run trained with model.caption_dropout "
                        "(1, the default: no guidance; the same as --sampler guided:g=G)")
    g.add_argument("--sampler", default=None,
                   help="how latents are drawn: plain (the paper), guided:g=G, "
                        "contrastive:g=G[,negatives=nearest], best_of_k:k=K, rejection:k=K (t2i.samplers); "
                        "default: the run's sample.sampler (plain unless the run says otherwise)")
    g.add_argument("--checkpoint", default="last", choices=("last", "best"))
    g.add_argument("--loop", choices=("unrolled", "while"),
                   help="override the run's model.loop: 'while' (the default of new runs and of the "
                        "shipped model) traces in a fraction of the time and runs faster; 'unrolled' "
                        "runs older runs' original graph (the two can differ in a few pixels by one level)")
    g.add_argument("--sharpen", action="store_true",
                   help="sharpen the images with the run's sharpener (see `t2i sharpen train`)")

    # `serve` and `client` hand their arguments to serving.server / serving.client.
    sub.add_parser("serve", help="serve exported models over gRPC and REST (tensorflow_model_server flags)",
                   add_help=False)
    sub.add_parser("client", help="query a model server (this one or TF Serving) and write PNGs",
                   add_help=False)
    sub.add_parser("demo", help="a web page to try a model (Gradio: pip install -e '.[demo]')",
                   add_help=False)
    sub.add_parser("pack", help="pack a run compactly (float16 weights and its records)", add_help=False)
    sub.add_parser("classifier", help="train the measuring classifiers: digits (MNIST) or scenes",
                   add_help=False)
    sub.add_parser("ops", help="the TensorFlow ops an exported model needs from a server", add_help=False)

    v = sub.add_parser("evaluate", help="bounds, caption fidelity and SSI on test composites")
    v.add_argument("--run", help="a run directory written by `t2i train`, or pretrained:NAME for a model t2i ships (default: the shipped MNIST-with-captions model)")
    v.add_argument("-o", "--out", required=True, help="report folder (metrics.json, metrics.md, samples.png)")
    v.add_argument("--examples", type=int, default=1000, help="test composites to evaluate (default 1000)")
    v.add_argument("--iw-examples", type=int, default=100, help="examples for the k=100 bound (default 100)")
    v.add_argument("--ssi-captions", type=int, default=100, help="captions for SSI (default 100)")
    v.add_argument("--samples", type=int, default=50, help="samples per caption for SSI (default 50)")
    v.add_argument("--retrieval-queries", type=int, default=100, help="retrieval queries (0: skip)")
    v.add_argument("--candidates", type=int, default=100, help="candidates per retrieval query")
    v.add_argument("--probe-samples", type=int, default=20,
                   help="MNIST: images per caption of each of the 240 compositions for the composition "
                        "probe (default 20; 0: skip)")
    v.add_argument("--probe-temperatures", default="0.5,0",
                   help="MNIST: also run the composition probe at these sampling temperatures, "
                        "comma-separated (default 0.5,0; empty: none). Every other figure samples "
                        "at temperature 1, the paper's protocol")
    v.add_argument("--guidance", type=float, default=1.0,
                   help="MNIST: classifier-free guidance scale for caption fidelity and the probe "
                        "(a run trained with model.caption_dropout; default 1: none)")
    v.add_argument("--sampler", default=None,
                   help="the sampler of caption fidelity, flips and the probe (as t2i generate "
                        "--sampler; default: the run's sample.sampler)")
    v.add_argument("--checkpoint", default="best", choices=("last", "best"))
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--sharpen", action="store_true",
                   help="measure caption fidelity (and scenes' flips) on images passed through the "
                        "run's sharpener (t2i sharpen train); MNIST's probe stays unsharpened")

    sl = sub.add_parser("slides", help="redraw the alignDRAW slides' colour figures from a scenes run")
    sl.add_argument("--run", required=True, help="a scenes run directory written by `t2i train`")
    sl.add_argument("-o", "--out", default="slides", help="folder for the figures and slides.md (default slides)")
    sl.add_argument("--samples", type=int, default=6, help="samples per caption (default 6)")
    sl.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    sl.add_argument("--sampler", default=None,
                    help="as t2i generate --sampler (default: the run's sample.sampler)")
    sl.add_argument("--checkpoint", default="best", choices=("last", "best"))
    sl.add_argument("--report", help="the run's evaluation (metrics.json or its folder; default: "
                                     "metrics.json in the run, if there)")

    _add_sharpen_parser(sub)

    e = sub.add_parser("export", help="export a run as a TF Serving SavedModel")
    e.add_argument("--run", help="a run directory written by `t2i train`, or pretrained:NAME for a model t2i ships (default: the shipped MNIST-with-captions model)")
    e.add_argument("--out", default="models/t2i", help="model base path (default models/t2i)")
    e.add_argument("--version", type=int, help="version number (default: highest existing + 1)")
    e.add_argument("--checkpoint", default="last", choices=("last", "best"))
    e.add_argument("--model_name", default="t2i", help="model name used in the warmup requests")
    return parser


def _add_sharpen_parser(sub) -> None:
    """`t2i sharpen train`: the sharpening GAN of docs/model.md §14 (training/sharpen.py)."""
    s = sub.add_parser("sharpen", help="the sharpening network trained on top of a run")
    actions = s.add_subparsers(dest="sharpen_command", required=True)
    t = actions.add_parser("train", help="train a run's sharpener into <run>/sharpen/")
    from t2i.sharpen.config import SharpenConfig  # light: the defaults live there, once

    d = {f.name: f.default for f in dataclasses.fields(SharpenConfig)}
    t.add_argument("--run", required=True, help="a run directory written by `t2i train`")
    t.add_argument("--steps", type=int, help=f"training steps (default {d['steps']})")
    t.add_argument("--batch-size", type=int, help=f"examples per step (default {d['batch_size']})")
    t.add_argument("--learning-rate", type=float, help=f"Adam learning rate (default {d['learning_rate']:g})")
    t.add_argument("--beta-1", type=float, help=f"Adam beta_1 (default {d['beta_1']:g})")
    t.add_argument("--reconstruction-weight", type=float,
                   help=f"weight of an L1 term to the real image (default {d['reconstruction_weight']:g}; "
                        "for --blurry posterior)")
    t.add_argument("--blurry", choices=("prior", "posterior"),
                   help=f"blurry training images: prior samples for the caption or the model's "
                        f"reconstructions of the real images (default {d['blurry']})")
    t.add_argument("--checkpoint", choices=("last", "best"), help=f"(default {d['checkpoint']})")
    t.add_argument("--generator-filters", type=int, nargs="+", metavar="N",
                   help="widths of the generator's hidden 7x7 convolutions (default "
                        + " ".join(map(str, d["generator_filters"])) + ")")
    t.add_argument("--discriminator-filters", type=int,
                   help=f"width of the discriminator's convolutions (default {d['discriminator_filters']})")
    t.add_argument("--seed", type=int, help=f"(default {d['seed']})")
    t.add_argument("--log-every", type=int, default=50, help="log every this many steps (default 50)")


_SHARPEN_SETTINGS = ("steps", "batch_size", "learning_rate", "beta_1", "reconstruction_weight", "blurry",
                     "checkpoint", "generator_filters", "discriminator_filters", "seed")


def _sharpen(args) -> int:
    from training.sharpen import train_sharpener

    settings = {k: getattr(args, k) for k in _SHARPEN_SETTINGS if getattr(args, k) is not None}
    if "generator_filters" in settings:
        settings["generator_filters"] = tuple(settings["generator_filters"])
    result = train_sharpener(args.run, log_every=args.log_every, **settings)
    print(result["dir"])
    return 0


def _run(run):
    """The run to use: the named one, or the shipped pretrained model."""
    from t2i import run as run_lib

    path = run_lib.resolve_run(run)
    if run is None:
        print(f"t2i: no --run given; using the shipped pretrained model ({path})", file=sys.stderr)
    return path


def _train(args) -> int:
    from t2i.config import ExperimentConfig, get_preset
    from training.train import config_summary, finalize_config, train

    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg:") and v is not None}
    for flag, key in _SHORTCUTS.items():
        value = getattr(args, flag)
        if value is not None:
            overrides[key] = value
    if args.resume:
        base = ExperimentConfig.load(args.config) if args.config else None
    else:
        base = ExperimentConfig.load(args.config) if args.config else get_preset(args.preset)
    config = finalize_config(base, args.out, overrides, resume=args.resume, strategy=args.strategy)
    print(("resuming " if args.resume else "training ") + config_summary(config) + f" -> {args.out}",
          file=sys.stderr)
    try:
        if args.time_limit is not None and args.time_limit <= 0:
            raise T2IError(f"--time-limit must be positive, got {args.time_limit}")
        train(config, args.out, resume=args.resume, verbose=2 if args.quiet else "auto",
              time_limit=None if args.time_limit is None else 60.0 * args.time_limit,
              strategy=args.strategy)
    except KeyboardInterrupt:
        print(f"\nt2i: interrupted; continue with: t2i train --out {args.out} --resume", file=sys.stderr)
        return 130
    return 0


def _generate(args) -> int:
    from t2i_cli.generate import generate_files, read_captions_file

    captions = list(args.captions)
    if args.captions_file:
        captions += read_captions_file(args.captions_file)
    if not captions:
        raise T2IError("give captions as arguments or with --captions-file")
    for path in generate_files(_run(args.run), captions, args.out, samples=args.samples, seed=args.seed,
                               gif=args.gif, alignment=args.alignment, checkpoint=args.checkpoint,
                               sharpen=args.sharpen, temperature=args.temperature, loop=args.loop,
                               guidance=args.guidance, sampler=args.sampler):
        print(path)
    return 0


def _evaluate(args) -> int:
    from training.evaluate import evaluate, markdown

    report = evaluate(_run(args.run), args.out, examples=args.examples, iw_examples=args.iw_examples,
                      ssi_captions=args.ssi_captions, samples=args.samples,
                      retrieval_queries=args.retrieval_queries, candidates=args.candidates,
                      checkpoint=args.checkpoint, seed=args.seed, probe_samples=args.probe_samples,
                      probe_temperatures=_floats(args.probe_temperatures, "--probe-temperatures"),
                      guidance=args.guidance, sampler=args.sampler, sharpen=args.sharpen)
    print(markdown(report))
    return 0


def _slides(args) -> int:
    from t2i_cli.slides import write_slides

    for path in write_slides(args.run, args.out, samples=args.samples, seed=args.seed,
                             checkpoint=args.checkpoint, sampler=args.sampler, report=args.report):
        print(path)
    return 0


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise T2IError(f"{flag} takes comma-separated numbers, got {text!r}") from None


def _export(args) -> int:
    from export.export_savedmodel import export_model

    print(export_model(_run(args.run), args.out, version=args.version, checkpoint=args.checkpoint,
                       model_name=args.model_name))
    return 0


def _pack(argv) -> int:
    from t2i.run import main as run_main

    return run_main(["pack", *argv], prog="t2i")


def _classifier(argv) -> int:
    """`t2i classifier digits|scenes [flags]`: t2i.digit_classifier / t2i.scene_classifier."""
    kinds = {"digits": "t2i.digit_classifier", "scenes": "t2i.scene_classifier"}
    if not argv or argv[0] not in kinds:
        print("usage: t2i classifier {digits,scenes} [--out WEIGHTS.h5] [flags]\n"
              "t2i: error: name the classifier to train: digits or scenes", file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(kinds[argv[0]]).main(argv[1:], prog=f"t2i classifier {argv[0]}")


def _ops(argv) -> int:
    from export.export_savedmodel import ops_main

    return ops_main(argv)


# Subcommands that hand their arguments to a module's own parser.
_PASS_THROUGH = {"pack": _pack, "classifier": _classifier, "ops": _ops}


def main(argv=None) -> int:
    from t2i_cli import quiet

    quiet.install()  # TensorFlow's start-up chatter stays off the terminal
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "serve":
        from serving.server import main as serve_main

        return serve_main(argv[1:])
    if argv and argv[0] == "client":
        from serving.client import main as client_main

        return client_main(argv[1:])
    if argv and argv[0] == "demo":
        from serving.demo import main as demo_main

        return demo_main(argv[1:])
    if argv and argv[0] in _PASS_THROUGH:
        return _PASS_THROUGH[argv[0]](argv[1:])
    args = _parser().parse_args(argv)
    try:
        commands = {"train": _train, "generate": _generate, "evaluate": _evaluate, "export": _export,
                    "sharpen": _sharpen, "slides": _slides}
        return commands[args.command](args)
    except T2IError as e:
        print(f"t2i: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
