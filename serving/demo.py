"""`t2i demo`: a web page to try a t2i model (Gradio; `pip install -e .[demo]`).

    t2i demo                                  # the shipped model, in this process
    t2i demo --run runs/mnist                 # a run of yours
    t2i demo --server localhost:8500          # a model server (t2i serve or TF Serving), over gRPC

A caption box with example captions (compositions seen in training and
held-out ones), the seed, the number of samples and the sampling
temperature; out come the sample grid, the canvas drawn over the T steps (an
animated GIF) and the word-attention heatmap per step (`t2i.visualize`).
Over gRPC it calls the `trace` signature (canvases, images, alignments) at
temperature 1 and `sample` otherwise (no canvases: no animation). Bad
captions (empty, too long) and a server that is down show a message in the
page; unknown words are read as the OOV token, with a warning. The app keeps
serving either way.

The page logic (`Demo.run`) is plain Python, testable without a browser;
`build_app` puts it behind Gradio.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
import tempfile
import threading
from dataclasses import dataclass

import numpy as np

from t2i.errors import T2IError, check_temperature
from t2i.text_numpy import check_caption

log = logging.getLogger("t2i.demo")

MAX_SAMPLES = 16
MAX_SEED = 2**31 - 1
DEFAULT_CAPTION = "the digit 7 is on the left of the digit 1 ."


# --------------------------------------------------------------------------
# where the images come from


class LocalModel:
    """A run (or the shipped model) loaded in this process."""

    def __init__(self, run_dir=None, checkpoint: str = "last"):
        from t2i import run as run_lib

        self.run_dir = run_lib.resolve_run(run_dir)
        self.config, self.model = run_lib.load_model(self.run_dir, checkpoint)
        self.description = ("shipped pretrained model, in this process" if run_dir is None
                            else f"shipped model `{str(run_dir).partition(':')[2]}`, in this process"
                            if str(run_dir).startswith("pretrained:")
                            else f"run `{run_dir}`, in this process")
        self._lock = threading.Lock()  # one generation at a time on this CPU model

    def generate(self, captions: list[str], seeds, temperature: float) -> dict:
        from t2i.text import CaptionTokenizer
        from t2i.visualize import to_uint8

        from t2i import samplers

        tokens = CaptionTokenizer(self.config.text).encode(captions)
        with self._lock:  # the run's own sampler (`sample.sampler`; plain for the paper's)
            out = samplers.generate(self.model, self.config, tokens, np.asarray(seeds),
                                    self.config.sample.sampler, trace=True, temperature=temperature)
        return {"images": to_uint8(out["images"]), "canvases": to_uint8(out["canvases"]),
                "alignments": np.asarray(out["alignments"])}


class ServedModel:
    """A model behind a TF Serving gRPC endpoint (`t2i serve` or tensorflow_model_server)."""

    def __init__(self, target: str, model_name: str = "t2i", timeout_s: float = 60.0):
        from serving import client

        self.target = target
        self.model_name = model_name
        self.timeout_s = float(timeout_s)
        self.channel = client.make_channel(target)
        self.description = f"model `{model_name}` served at `{target}` over gRPC"

    def generate(self, captions: list[str], seeds, temperature: float) -> dict:
        from serving import client

        call = dict(model_name=self.model_name, timeout_s=self.timeout_s, retries=1)
        try:
            if float(temperature) == 1.0:  # `trace`: canvases too
                out = client.trace(self.channel, captions, list(seeds), **call)
            else:  # `sample`: images and alignments at this temperature
                out = client.sample(self.channel, captions, list(seeds), temperature, **call)
        except client.ClientError as e:
            raise T2IError(self._explain(e)) from None
        return {"images": np.asarray(out["images"]), "canvases": out.get("canvases"),
                "alignments": np.asarray(out["alignments"])}

    def _explain(self, e) -> str:
        name = e.code.name
        if name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            return (f"the model server at {self.target} is not answering ({name}); start it "
                    f"with `t2i serve --model_name {self.model_name} --model_base_path ...` "
                    f"and try again")
        if name == "NOT_FOUND":
            return f"the model server at {self.target} has no model {self.model_name!r}: {e.details}"
        return f"the model server rejected the request ({name}): {e.details}"

    def close(self) -> None:
        self.channel.close()


# --------------------------------------------------------------------------
# the page's logic


@dataclass
class DemoResult:
    grid: object            # PIL image: the samples under the caption
    animation: str | None   # path of the GIF of the canvas over the T steps (None: no canvases)
    attention: object       # PIL image: word attention per step (+ the canvases of sample 1)
    images: np.ndarray      # uint8 [N, H, W, C]
    words: list[str]        # the caption's tokens (the heatmap's columns)
    unknown: list[str]      # words not in the vocabulary (read as the OOV token)
    message: str            # a line of Markdown about what was drawn


def example_captions(config) -> tuple[list[str], list[str]]:
    """(seen, held-out) example captions of a run (`t2i.data.catalog.example_captions`)."""
    from t2i.data.catalog import example_captions as of_run

    return of_run(config)


class Demo:
    """caption, seed, samples, temperature -> DemoResult (or T2IError with a clear message)."""

    def __init__(self, backend, text_config, examples=((), ()), max_samples: int = MAX_SAMPLES,
                 workdir: str | None = None, keep_files: int = 64):
        from t2i.text_numpy import NumpyCaptionTokenizer

        self.backend = backend
        self.text_config = text_config
        self.tokenizer = NumpyCaptionTokenizer(text_config)
        self.seen_examples, self.held_out_examples = (list(e) for e in examples)
        # The page's first caption: the run's first example (MNIST: DEFAULT_CAPTION).
        self.default_caption = self.seen_examples[0] if self.seen_examples else DEFAULT_CAPTION
        self.max_samples = int(max_samples)
        self.workdir = workdir or tempfile.mkdtemp(prefix="t2i-demo-")
        self._files = collections.deque()
        self._keep = int(keep_files)
        self._files_lock = threading.Lock()

    def check_caption(self, caption) -> tuple[str, list[str], list[str]]:
        """(caption, its words, unknown words); T2IError if empty or too long."""
        caption = "" if caption is None else str(caption)
        words = self.tokenizer.words(caption)
        check_caption(caption.strip(), len(words), self.text_config.max_caption_length)
        known = set(self.text_config.vocabulary)
        unknown = list(dict.fromkeys(w for w in words if w not in known))
        return caption.strip(), words, unknown

    def run(self, caption, seed=0, samples=8, temperature=1.0) -> DemoResult:
        from t2i import visualize

        caption, words, unknown = self.check_caption(caption)
        seed, samples = _whole(seed, "seed", 0, MAX_SEED), _whole(samples, "samples", 1,
                                                                  self.max_samples)
        try:
            temperature = float(check_temperature(float(temperature), "temperature"))
        except (TypeError, ValueError) as e:
            raise T2IError(str(e) if isinstance(e, T2IError) else
                           f"temperature must be a number >= 0, got {temperature!r}") from None
        seeds = seed + np.arange(samples)
        out = self.backend.generate([caption] * samples, seeds, temperature)
        images = np.asarray(out["images"])
        canvases = out.get("canvases")
        alignments = np.asarray(out["alignments"])
        grid = visualize.captioned_grid([images], [caption])
        animation = None
        if canvases is not None:
            canvases = np.asarray(canvases)
            animation = self._new_file(".gif")
            visualize.save_canvas_gif(animation, np.swapaxes(canvases, 0, 1),
                                      cols=min(samples, 4))
        n = min(len(words), alignments.shape[-1])
        steps = alignments.shape[1]
        # The canvases beside the rows (the paper's figure) while that stays a page high.
        beside = canvases is not None and steps * canvases.shape[2] <= 640
        attention = visualize.alignment_figure(alignments[0, :, :n], words[:n],
                                               canvases=canvases[0] if beside else None,
                                               scale=1)
        attention = _pad_top(attention, 28)  # room for the page's label over the word labels
        message = (f"{samples} sample{'s' * (samples != 1)}, seeds {seed}..{seed + samples - 1}, "
                   f"temperature {temperature:g}, {steps} drawing steps.")
        if canvases is None:
            message += (" No animation: over a model server, only temperature 1 (the `trace` "
                        "signature) returns the canvases.")
        if unknown:
            message += (f" Not in the vocabulary, read as {self.text_config.oov_token}: "
                        + ", ".join(unknown) + ".")
        return DemoResult(grid, animation, attention, images, words, unknown, message)

    def _new_file(self, suffix: str) -> str:
        fd, path = tempfile.mkstemp(suffix=suffix, dir=self.workdir)
        os.close(fd)
        with self._files_lock:
            self._files.append(path)
            while len(self._files) > self._keep:  # Gradio has copied older ones to its cache
                old = self._files.popleft()
                try:
                    os.remove(old)
                except OSError:
                    pass
        return path


def _pad_top(image, pixels: int):
    from PIL import Image

    out = Image.new(image.mode, (image.width, image.height + pixels), "white")
    out.paste(image, (0, pixels))
    return out


def _whole(value, name: str, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise T2IError(f"{name} must be a whole number, got {value!r}") from None
    if not np.isfinite(number) or number != int(number) or not low <= number <= high:
        raise T2IError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(number)


# --------------------------------------------------------------------------
# the Gradio app


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError:
        raise T2IError("the demo needs Gradio: pip install -e '.[demo]'") from None
    return gr


def build_app(demo):
    """The page: a gradio.Blocks (call .launch(), or use serve()).

    `demo`: one `Demo`, or {tab label: Demo} for several models, one tab each (the first
    tab's elements keep the plain ids, e.g. #caption; the others' end in -<i>, e.g. #caption-2).
    """
    gr = _gradio()
    demos = demo if isinstance(demo, dict) else None
    with gr.Blocks(title="t2i: alignDRAW text-to-image", delete_cache=(600, 3600)) as app:
        if demos is None:
            gr.Markdown("## t2i — alignDRAW text-to-image\n"
                        "Type a caption; the model draws it on a canvas over T steps while its "
                        f"attention moves over the words. Drawing with the {demo.backend.description}.")
            _panel(gr, demo, "")
        else:
            gr.Markdown("## t2i — alignDRAW text-to-image\n"
                        "Type a caption; the model draws it on a canvas over T steps while its "
                        "attention moves over the words. One tab per model.")
            with gr.Tabs():
                for i, (label, one) in enumerate(demos.items()):
                    with gr.Tab(label, elem_id=f"tab-{i + 1}"):
                        gr.Markdown(f"Drawing with the {one.backend.description}.")
                        _panel(gr, one, "" if i == 0 else f"-{i + 1}")
    app.queue(default_concurrency_limit=2, max_size=64)
    return app


def _panel(gr, demo: Demo, suffix: str) -> None:
    """One model's controls and outputs (element ids end in `suffix`)."""

    def on_generate(caption, seed, samples, temperature):
        try:
            result = demo.run(caption, seed, samples, temperature)
        except T2IError as e:
            raise gr.Error(str(e), title="Cannot draw this", print_exception=False) from None
        except Exception as e:  # noqa: BLE001 - the page shows a message, the app keeps serving
            log.exception("the demo failed on caption %r", caption)
            raise gr.Error(f"Something went wrong while drawing ({type(e).__name__}: {e}); "
                           f"the details are in the server's log", print_exception=False) from None
        if result.unknown:
            gr.Warning(f"Not in the vocabulary (read as {demo.text_config.oov_token}): "
                       + ", ".join(result.unknown))
        return result.grid, result.animation, result.attention, result.message

    with gr.Row():
        with gr.Column(scale=1):
            caption = gr.Textbox(label="Caption", value=demo.default_caption, lines=1,
                                 max_lines=2, elem_id=f"caption{suffix}")
            with gr.Row():
                seed = gr.Number(label="Seed", value=0, precision=0, minimum=0,
                                 maximum=MAX_SEED, elem_id=f"seed{suffix}")
                samples = gr.Slider(1, demo.max_samples, value=8, step=1, label="Samples",
                                    elem_id=f"samples-count{suffix}")
            temperature = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Temperature "
                                    "(1: the model's prior; 0: its means)",
                                    elem_id=f"temperature{suffix}")
            button = gr.Button("Draw", variant="primary", elem_id=f"draw{suffix}")
            if demo.seen_examples:
                gr.Examples([[c] for c in demo.seen_examples], inputs=[caption],
                            label="Compositions seen in training")
            if demo.held_out_examples:
                gr.Examples([[c] for c in demo.held_out_examples], inputs=[caption],
                            label="Held-out compositions (never seen in training)")
        with gr.Column(scale=2):
            grid = gr.Image(label="Samples", type="pil", format="png", interactive=False,
                            elem_id=f"grid{suffix}", height=200)
            with gr.Row(equal_height=False):
                animation = gr.Image(label="The canvas, step by step", type="filepath",
                                     interactive=False, elem_id=f"animation{suffix}")
                attention = gr.Image(label="Attention over the words, per step", type="pil",
                                     format="png", interactive=False, elem_id=f"attention{suffix}")
            status = gr.Markdown(elem_id=f"status{suffix}")
    outputs = [grid, animation, attention, status]
    inputs = [caption, seed, samples, temperature]
    button.click(on_generate, inputs, outputs)
    caption.submit(on_generate, inputs, outputs)


def serve(demo, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Launch the page on host:port (`demo`: a `Demo` or {tab label: Demo}, as `build_app`);
    with block=False return the running app (app.close() stops)."""
    app = build_app(demo)
    app.launch(server_name=host, server_port=int(port), prevent_thread_lock=not block,
               share=False, inbrowser=False, quiet=not block, show_error=False, ssr_mode=False)
    return app


# --------------------------------------------------------------------------
# command line


def build_parser(prog: str = "t2i demo") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="A web page to try a t2i model "
                                "(needs Gradio: pip install -e '.[demo]').")
    p.add_argument("--run", help="run directory, or pretrained:NAME for a model t2i ships: the model to "
                                 "load in-process (default: the shipped MNIST model); with --server, "
                                 "only its vocabulary and examples are used")
    p.add_argument("--checkpoint", default="last", choices=("last", "best"))
    p.add_argument("--server", metavar="HOST:PORT",
                   help="query this model server over gRPC (t2i serve or TF Serving) instead of "
                        "loading the model")
    p.add_argument("--model_name", default="t2i", help="model name on the server (default t2i)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per server call")
    p.add_argument("--port", type=int, default=7860, help="page port (default 7860)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 for all interfaces)")
    p.add_argument("--max-samples", type=int, default=MAX_SAMPLES,
                   help=f"largest number of samples a visitor may ask for (default {MAX_SAMPLES})")
    return p


def demo_from_args(args):
    """A `Demo`, or {model name: Demo} for every shipped model when no --run or --server is given."""
    from t2i import run as run_lib

    if args.max_samples < 1:
        raise T2IError(f"--max-samples must be >= 1, got {args.max_samples}")
    if args.server:
        config = run_lib.load_run_config(run_lib.resolve_run(args.run))
        backend = ServedModel(args.server, args.model_name, args.timeout)
    elif args.run is None and len(run_lib.shipped_models()) > 1:  # every shipped model, a tab each
        names = sorted(run_lib.shipped_models(), key=lambda n: n != run_lib.PRETRAINED.name)
        demos = {}
        for name in names:
            backend = LocalModel(f"pretrained:{name}", args.checkpoint)
            demos[name] = Demo(backend, backend.config.text, example_captions(backend.config),
                               max_samples=args.max_samples)
        return demos
    else:
        backend = LocalModel(args.run, args.checkpoint)
        config = backend.config
    return Demo(backend, config.text, example_captions(config), max_samples=args.max_samples)


class _StopOnSignal:
    """SIGINT/SIGTERM set an event instead of killing the process (previous handlers come back
    on exit). Entered before the page starts listening, so a signal that arrives while Gradio
    is still launching ends the command cleanly too."""

    def __enter__(self):
        import signal

        self.stop = threading.Event()
        self._previous = {sig: signal.signal(sig, lambda *_: self.stop.set())
                          for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def wait(self) -> None:
        while not self.stop.wait(0.5):
            pass

    def __exit__(self, *exc):
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def main(argv=None, prog: str = "t2i demo") -> int:
    """`t2i demo`: serve the page until SIGINT/SIGTERM (then exit 0); bad flags end with
    `t2i: error: ...` and status 2."""
    args = build_parser(prog).parse_args(argv)
    try:
        _gradio()
        demo = demo_from_args(args)
        what = ("; ".join(d.backend.description for d in demo.values()) if isinstance(demo, dict)
                else demo.backend.description)
        print(f"t2i demo: http://{args.host}:{args.port}/  ({what})", file=sys.stderr)
        with _StopOnSignal() as signals:
            app = serve(demo, args.host, args.port, block=False)
            try:
                signals.wait()
            finally:
                app.close()
    except T2IError as e:
        print(f"t2i: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"t2i: error: cannot serve the demo on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m serving.demo"))
