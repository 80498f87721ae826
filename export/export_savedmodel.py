"""SavedModel export for TensorFlow Serving.

    t2i export --run runs/mnist --out models/t2i [--version N] [--checkpoint best]

writes `models/t2i/<N>/` (N: one more than the highest existing version by
default), built in a temporary folder beside it and renamed into place, so a
polling TF Serving never sees a half-written version. Its signatures, all
batch-major with a dynamic batch dimension:

* `serving_default`: `captions` (string [B]), `seed` (int64 [B]) ->
  `images` (uint8 [B, H, W, C]), `alignments` (float32 [B, T, L]).
* `trace`: the same inputs -> `canvases` (uint8 [B, T, H, W, C], the
  canvas after every step), `images`, `alignments`.
* `sample`: `captions`, `seed` and `temperature` (float32 [B], >= 0) ->
  `images`, `alignments`: as `serving_default` with the prior's noise scaled
  by the temperature (`AlignDRAW.generate`); temperature 1 gives exactly the
  `serving_default` image, 0 the image of the prior means.
* `plain`: the inputs and outputs of `serving_default`, always drawn with the paper's
  plain sampler.
* `score`: `captions` (string [B]), `images` (uint8 [B, H, W, C]) ->
  `bound` (float32 [B]): the single-sample variational lower bound on
  log p(image | caption) in nats, with fixed noise (seed 0), so the same
  pair always gets the same score.
* `sharpened` (only when the run has a sharpener, `t2i sharpen train`): the
  inputs of `serving_default` -> `images` (uint8, the sample after the
  sharpening network of docs/model.md §14, computed in the graph from the same
  sample as `serving_default`), `alignments`.

Captions are tokenised inside the graph by the same `CaptionTokenizer` as
training. Randomness is `tf.random.stateless_normal` seeded by `seed`
(sample i uses only seed i), so a request always gets the same image, the
same as `AlignDRAW.generate` for that seed. Invalid UTF-8, empty captions and
captions longer than the model takes fail with INVALID_ARGUMENT and a message
naming the problem.

`serving_default`, `trace`, `sample` and `sharpened` draw with the run's own sampler
(`sample.sampler`) where the graph has it: plain sampling (the paper's) or best-of-K
(`export.graph_samplers`: K candidates, each scored against captions naming another
word of its swap groups), so they give `t2i generate`'s image for a caption and seed;
`plain` always draws the paper's way. A run whose sampler the graph lacks (contrastive
guidance, rejection by the digit reader) is exported with plain sampling and a note
saying so: that sampler runs in `t2i generate`, `t2i evaluate` and the demo.

The export carries `assets/t2i_config.json` (the run's frozen config),
`assets/vocabulary.txt`, `assets/held_out.txt`, `assets/sharpen_config.json`
(with a sharpener) and
`assets.extra/tf_serving_warmup_requests` (PredictionLog records that TF
Serving replays before it serves the version).
"""

from __future__ import annotations

import sys

import os
import shutil
import tempfile
from pathlib import Path

from t2i import serving_contract as contract
from t2i.errors import T2IError

# Ops outside core TensorFlow that the export may use: all are in the
# tensorflow-text `ops_lib` that tensorflow_model_server links in.
ALLOWED_CUSTOM_OPS = frozenset({
    "CaseFoldUTF8", "NormalizeUTF8", "RegexSplitWithOffsets", "WhitespaceTokenizeWithOffsets",
    "TFText>WhitespaceTokenizeWithOffsetsV2", "FastWordpieceTokenizeWithOffsets",
    "WordpieceTokenizeWithOffsets",
})


def existing_versions(base) -> list[int]:
    """Numbered version folders under `base` (TF Serving: plain integers only)."""
    base = Path(base)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def build_archive(config, model, sharpener=None):
    """A `keras.export.ExportArchive` with t2i's five signatures (six with a `Sharpener`)."""
    import keras
    import tensorflow as tf

    from export import graph_samplers
    from t2i.samplers import interchangeable_for
    from t2i.text import CaptionTokenizer

    tokenizer = CaptionTokenizer(config.text)
    m = config.model
    steps, latent, limit = m.num_steps, m.latent_dim, config.text.max_caption_length
    shape = (m.image_height, m.image_width, m.channels)

    def tokens_of(captions):
        valid = tf.equal(tf.strings.unicode_transcode(
            captions, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD), captions)
        check_utf8 = tf.debugging.Assert(
            tf.reduce_all(valid), ["t2i: caption is not valid UTF-8; invalid caption indices:",
                                   tf.where(tf.logical_not(valid))[:, 0]], summarize=8)
        with tf.control_dependencies([check_utf8]):
            words = tokenizer.words(captions)  # tokenised once: lengths and ids both come from it
        lengths = words.row_lengths()
        checks = [
            tf.debugging.assert_greater(lengths, tf.constant(0, lengths.dtype),
                                        message="t2i: empty caption: every caption needs at least one word; "
                                                "token counts per caption"),
            tf.debugging.assert_less_equal(lengths, tf.constant(limit, lengths.dtype),
                                           message=f"t2i: caption too long: this model takes at most "
                                                   f"{limit} tokens; token counts per caption"),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(tokenizer.ids(words))

    def noise_of(seeds):
        return graph_samplers.seed_noise(seeds, (steps, latent))

    def check_batch(captions, other, name):
        return tf.debugging.assert_equal(
            tf.shape(captions)[0], tf.shape(other)[0],
            message=f"t2i: captions and {name} must have the same batch size")

    def to_uint8(x):
        return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)

    k = graph_sampler_k(config)
    groups = interchangeable_for(config) if k else None

    def draw(tokens, seed, trace=False, temperature=None, plain=False):
        """The run's sampler (plain unless `graph_sampler_k`), images in [0, 1]."""
        if k and not plain:
            return graph_samplers.best_of_k(model, tokens, seed, k, groups, temperature=temperature, trace=trace)
        noise = noise_of(seed)
        if temperature is not None:
            noise = noise * tf.reshape(temperature, (-1, 1, 1))
        return model.sample(tokens, noise, trace=trace)

    def generate(captions, seed, trace, temperature=None, plain=False):
        with tf.control_dependencies([check_batch(captions, seed, "seed")]):
            tokens = tokens_of(captions)
        if temperature is not None:
            checks = [check_batch(captions, temperature, "temperature"),
                      tf.debugging.Assert(
                          tf.reduce_all(tf.logical_and(tf.math.is_finite(temperature), temperature >= 0.0)),
                          ["t2i: temperature must be a finite number >= 0; got", temperature], summarize=8)]
            with tf.control_dependencies(checks):
                temperature = tf.identity(temperature)
        out = draw(tokens, seed, trace=trace, temperature=temperature, plain=plain)
        result = {"images": to_uint8(out["images"]), "alignments": out["alignments"]}
        if trace:
            result["canvases"] = to_uint8(out["canvases"])
        return result

    def serve(captions, seed):
        return generate(captions, seed, trace=False)

    def serve_plain(captions, seed):
        return generate(captions, seed, trace=False, plain=True)

    def trace(captions, seed):
        return generate(captions, seed, trace=True)

    def sample(captions, seed, temperature):
        return generate(captions, seed, trace=False, temperature=temperature)

    def score(captions, images):
        with tf.control_dependencies([check_batch(captions, images, "images")]):
            tokens = tokens_of(captions)
        pixels = tf.cast(images, tf.float32) / 255.0
        noise = noise_of(tf.zeros(tf.shape(captions)[:1], tf.int64))
        out = model({"images": pixels, "tokens": tokens, "noise": noise}, training=False)
        return {"bound": -(out["reconstruction"] + tf.reduce_sum(out["kl"], axis=-1))}

    captions_spec = tf.TensorSpec([None], tf.string, name="captions")
    seed_spec = tf.TensorSpec([None], tf.int64, name="seed")
    images_spec = tf.TensorSpec([None, *shape], tf.uint8, name="images")
    tokenizer(tf.constant(["the"]))  # builds the lookup layer
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tokenizer.lookup)
    archive.add_endpoint(contract.DEFAULT_SIGNATURE, serve, input_signature=[captions_spec, seed_spec])
    archive.add_endpoint(contract.TRACE_SIGNATURE, trace, input_signature=[captions_spec, seed_spec])
    archive.add_endpoint(contract.SAMPLE_SIGNATURE, sample, input_signature=[
        captions_spec, seed_spec, tf.TensorSpec([None], tf.float32, name="temperature")])
    archive.add_endpoint(contract.PLAIN_SIGNATURE, serve_plain, input_signature=[captions_spec, seed_spec])
    archive.add_endpoint(contract.SCORE_SIGNATURE, score, input_signature=[captions_spec, images_spec])
    if sharpener is not None:  # --- `sharpened`: the sample, then the sharpener (t2i.sharpen) ---
        from t2i.sharpen import caption_vector

        def sharpened(captions, seed):
            with tf.control_dependencies([check_batch(captions, seed, "seed")]):
                tokens = tokens_of(captions)
            out = draw(tokens, seed)
            sharp = sharpener({"blurry": out["images"], "caption": caption_vector(model, tokens)})["sharp"]
            return {"images": to_uint8(sharp), "alignments": out["alignments"]}

        archive.track(sharpener)
        archive.add_endpoint(contract.SHARPENED_SIGNATURE, sharpened, input_signature=[captions_spec, seed_spec])
    return archive, tokenizer


def warmup_captions(config) -> list[str]:
    """Captions for the warmup requests, from the run itself (whatever its dataset).

    A caption of the run's first held-out composition, if it has any
    (`t2i.data.catalog.held_out_captions`), and a caption of the longest length the model
    takes made of its vocabulary's words in order (for COCO the most frequent
    first), so that warmup traces the largest input shape with words the
    model knows.
    """
    from t2i.data.catalog import held_out_captions

    held = held_out_captions(config)[:1]
    words = list(config.text.vocabulary)
    if not words:
        raise T2IError("the run's config has no vocabulary (text.vocabulary); cannot export it")
    length = config.text.max_caption_length
    longest = " ".join(words[i % len(words)] for i in range(length))
    return held + [longest]


def warmup_requests(model_name: str, captions: list[str]) -> list[bytes]:
    """Serialized PredictionLog records for `assets.extra/tf_serving_warmup_requests`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    records = []
    for batch in (captions[:1], captions):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = contract.DEFAULT_SIGNATURE
        request.inputs["captions"].CopyFrom(tf.make_tensor_proto([c.encode() for c in batch], tf.string))
        request.inputs["seed"].CopyFrom(tf.make_tensor_proto(list(range(len(batch))), tf.int64))
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        records.append(log.SerializeToString())
    return records


def graph_sampler_k(config) -> int:
    """K when the run's own sampler (`sample.sampler`) is best-of-K with K > 1 and its
    dataset has swap groups, which the exported graph draws (`export.graph_samplers`);
    0 when its signatures draw with plain sampling."""
    from t2i.samplers import Sampler, interchangeable_for

    sampler = Sampler.parse(config.sample.sampler)
    if sampler.name != "best_of_k" or sampler.is_plain or not interchangeable_for(config):
        return 0
    return sampler.k


def sampler_note(config, label: str) -> str | None:
    """The note `t2i export` prints for a run whose own sampler (`sample.sampler`) is not
    plain; None for a plain run."""
    sampler = config.sample.sampler
    if sampler == "plain":
        return None
    if graph_sampler_k(config):
        return (f"t2i: note: {label} draws with sampler {sampler}; so do the exported serving_default, "
                "trace, sample and sharpened signatures, and the plain signature draws with plain "
                "sampling (the paper's)")
    return (f"t2i: note: {label} draws with sampler {sampler} in t2i generate, evaluate "
            "and the demo; the exported signatures draw with plain sampling (the paper's)")


def export_model(run_dir, out, version: int | None = None, checkpoint: str = "last",
                 model_name: str = "t2i") -> Path:
    """Exports a trained run (None: the shipped model) to `<out>/<version>/`; returns that path."""
    from t2i import run as run_lib
    from t2i import sharpen

    run_dir = run_lib.resolve_run(run_dir)
    config, model = run_lib.load_model(run_dir, checkpoint)
    note = sampler_note(config, run_lib.run_label(run_dir))
    if note:
        print(note, file=sys.stderr)
    sharpener = sharpen.load_run_sharpener(run_dir, model) if sharpen.has_sharpener(run_dir) else None
    return export_loaded(config, model, out, version=version, model_name=model_name, sharpener=sharpener)


def export_loaded(config, model, out, version: int | None = None, model_name: str = "t2i",
                  sharpener=None) -> Path:
    """Exports an in-memory `AlignDRAW` and its `ExperimentConfig` to `<out>/<version>/`.

    sharpener: optional (`SharpenConfig`, `Sharpener`) pair; adds the
    `sharpened` signature and `assets/sharpen_config.json`.
    """
    import tensorflow as tf

    base = Path(out)
    if base.exists() and not base.is_dir():
        raise T2IError(f"--out {base} exists and is not a directory")
    versions = existing_versions(base)
    if version is None:
        version = (versions[-1] + 1) if versions else 1
    if version < 0:
        raise T2IError(f"--version must be a non-negative integer, got {version}")
    target = base / str(version)
    if target.exists():
        raise T2IError(f"version {version} already exists at {target}; pick another --version")
    base.mkdir(parents=True, exist_ok=True)

    archive, tokenizer = build_archive(config, model, sharpener=None if sharpener is None else sharpener[1])
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=base))
    try:
        export_dir = tmp / "model"
        archive.write_out(str(export_dir), verbose=False)
        assets = export_dir / "assets"
        assets.mkdir(exist_ok=True)
        config.save(assets / "t2i_config.json")
        if sharpener is not None:
            (assets / "sharpen_config.json").write_text(sharpener[0].to_json())
        (assets / "vocabulary.txt").write_text("\n".join(tokenizer.vocabulary[1:]) + "\n")
        (assets / "held_out.txt").write_text("".join(f"{c}\n" for c in config.data.held_out))
        extra = export_dir / "assets.extra"
        extra.mkdir()
        with tf.io.TFRecordWriter(str(export_dir / contract.WARMUP_FILE)) as writer:
            for record in warmup_requests(model_name, warmup_captions(config)):
                writer.write(record)
        os.rename(export_dir, target)  # atomic on one filesystem
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def op_report(saved_model_dir) -> dict:
    """The ops of a SavedModel: all of them, those outside core TensorFlow, XLA functions.

    Run it in a process that has not imported tensorflow_text: ops that TF
    does not know there are the custom ones a server must link in.
    """
    import sys

    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    if "tensorflow_text" in sys.modules:
        raise RuntimeError("op_report needs a process without tensorflow_text imported")
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    graph = sm.meta_graphs[0].graph_def
    functions = {f.signature.name for f in graph.library.function}
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    ops -= functions
    xla = sorted(f.signature.name for f in graph.library.function
                 if "_XlaMustCompile" in f.attr and f.attr["_XlaMustCompile"].b)
    return {"ops": sorted(ops), "custom": sorted(o for o in ops if op_def_registry.get(o) is None),
            "xla_functions": xla}


def ops_main(argv=None, prog: str = "t2i ops") -> int:
    """`t2i ops SAVED_MODEL_DIR`: the ops an exported model needs from a server, as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog=prog, description="the TensorFlow ops an exported model "
                                     "needs (custom: those a server must link in)")
    parser.add_argument("saved_model_dir", help="a version directory, e.g. models/t2i/1")
    args = parser.parse_args(argv)
    if not (Path(args.saved_model_dir) / "saved_model.pb").is_file():
        print(f"t2i: error: no saved_model.pb in {args.saved_model_dir}", file=sys.stderr)
        return 2
    print(json.dumps(op_report(args.saved_model_dir), indent=1))
    return 0


if __name__ == "__main__":  # python -m export.export_savedmodel ops models/t2i/1
    sys.exit(ops_main(sys.argv[2:] if sys.argv[1:2] == ["ops"] else sys.argv[1:],
                      prog="python -m export.export_savedmodel ops"))
