"""The SavedModel follows TF Serving's contract (docs/serving.md)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from export.export_savedmodel import ALLOWED_CUSTOM_OPS, export_model, warmup_captions
from t2i.serving_contract import WARMUP_FILE
from t2i import config as C
from t2i import run as run_lib
from t2i.errors import T2IError
from t2i.text import CaptionTokenizer
from tests.runs import copy_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAPTIONS = ["the digit 7 is on the left of the digit 1 .", "The digit 3 is at the TOP of the digit 8.",
            "the digit 4 is at the top left of the image ."]


@pytest.fixture(scope="module")
def exported(visible_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    run_dir = copy_run(visible_run, root / "run")
    path = export_model(run_dir, root / "models" / "t2i")
    return run_dir, path


@pytest.fixture(scope="module")
def loaded(exported):
    """The exported SavedModel loaded once (its signatures are stateless: calls change nothing)."""
    return tf.saved_model.load(str(exported[1]))


def _signatures(path):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((path / "saved_model.pb").read_bytes())
    (meta,) = sm.meta_graphs
    assert list(meta.meta_info_def.tags) == ["serve"]
    return meta.signature_def


def _run(code, **env):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd="/", capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **env))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_layout_assets_and_warmup(exported):
    run_dir, path = exported
    assert path.name == "1" and path.parent.name == "t2i"
    assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    config = run_lib.load_run_config(run_dir)
    assert C.ExperimentConfig.load(path / "assets" / "t2i_config.json") == config
    assert (path / "assets" / "held_out.txt").read_text().split("\n")[:-1] == list(config.data.held_out)
    vocab = (path / "assets" / "vocabulary.txt").read_text().split("\n")
    assert vocab[0] == "[UNK]" and "digit" in vocab

    from tensorflow_serving.apis import prediction_log_pb2

    records = list(tf.data.TFRecordDataset(str(path / WARMUP_FILE)))
    assert 1 <= len(records) <= 1000
    for raw in records:
        log = prediction_log_pb2.PredictionLog.FromString(raw.numpy())
        request = log.predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        assert set(request.inputs) == {"captions", "seed"}
        assert tf.make_ndarray(request.inputs["captions"]).shape == tf.make_ndarray(request.inputs["seed"]).shape
    sent = [c.decode() for c in tf.make_ndarray(prediction_log_pb2.PredictionLog.FromString(
        records[-1].numpy()).predict_log.request.inputs["captions"])]
    assert sent == warmup_captions(config)


def test_a_run_with_its_own_sampler_is_exported_with_a_note():
    """Best-of-K is drawn in the graph (tests/training/test_train_scenes.py serves it); the
    other samplers are noted."""
    from export.export_savedmodel import graph_sampler_k, sampler_note

    assert sampler_note(C.tiny(), "runs/x") is None
    assert graph_sampler_k(C.scenes_tiny().override({"sample.sampler": "best_of_k:k=4"})) == 4
    assert graph_sampler_k(C.tiny().override({"sample.sampler": "best_of_k:k=2"})) == 2  # the digits
    assert graph_sampler_k(C.tiny().override({"sample.sampler": "best_of_k:k=1"})) == 0  # plain
    coco = C.coco_32().override({"text.vocabulary": ("a", "cat"), "sample.sampler": "best_of_k:k=4"})
    assert graph_sampler_k(coco) == 0  # no swap groups
    note = sampler_note(C.scenes_tiny().override({"sample.sampler": "best_of_k:k=4"}), "runs/x")
    assert note.startswith("t2i: note: runs/x draws with sampler best_of_k:k=4; so do the exported serving_default")
    note = sampler_note(C.scenes_tiny().override({"sample.sampler": "contrastive:g=2"}), "runs/x")
    assert note.startswith("t2i: note: runs/x draws with sampler contrastive:g=2 in t2i generate")
    assert "signatures draw with plain sampling" in note


def test_warmup_captions_come_from_the_run_not_from_mnist():
    coco = C.coco_32().override({"text.vocabulary": ("a", "cat", "on", "mat"), "text.max_caption_length": 6})
    assert warmup_captions(coco) == ["a cat on mat a cat"]
    mnist = C.tiny().override({"data.held_out": ("2 left of 9",)})
    held, longest = warmup_captions(mnist)
    assert held == "the digit 2 is on the left of the digit 9 ."
    assert longest.split() == list(mnist.text.vocabulary)[:mnist.text.max_caption_length]
    with pytest.raises(T2IError, match="no vocabulary"):
        warmup_captions(C.coco_32())


def test_signatures_names_dtypes_and_batch_major_shapes(exported):
    _, path = exported
    sigs = _signatures(path)
    assert {"serving_default", "trace", "score"} <= set(sigs)
    dt = tf.dtypes.as_dtype

    def spec(tensors):
        return {k: (dt(v.dtype).name, [d.size for d in v.tensor_shape.dim]) for k, v in tensors.items()}

    assert spec(sigs["serving_default"].inputs) == {"captions": ("string", [-1]), "seed": ("int64", [-1])}
    assert spec(sigs["serving_default"].outputs) == {"images": ("uint8", [-1, 60, 60, 1]),
                                                     "alignments": ("float32", [-1, 3, -1])}
    assert spec(sigs["trace"].outputs)["canvases"] == ("uint8", [-1, 3, 60, 60, 1])
    assert spec(sigs["sample"].inputs) == {"captions": ("string", [-1]), "seed": ("int64", [-1]),
                                           "temperature": ("float32", [-1])}
    assert spec(sigs["sample"].outputs) == spec(sigs["serving_default"].outputs)
    assert spec(sigs["plain"].inputs) == spec(sigs["serving_default"].inputs)
    assert spec(sigs["plain"].outputs) == spec(sigs["serving_default"].outputs)
    assert spec(sigs["score"].inputs) == {"captions": ("string", [-1]), "images": ("uint8", [-1, 60, 60, 1])}
    assert spec(sigs["score"].outputs) == {"bound": ("float32", [-1])}
    for sig in ("serving_default", "trace", "sample", "plain", "score"):
        assert sigs[sig].method_name == "tensorflow/serving/predict"


def test_op_audit_in_a_process_without_tensorflow_text(exported):
    _, path = exported
    out = _run(f"""
        import json, sys
        sys.path.insert(0, {ROOT!r})
        from export.export_savedmodel import op_report
        print(json.dumps(op_report({str(path)!r})))
    """)
    report = json.loads(out.strip().splitlines()[-1])
    assert set(report["custom"]) <= ALLOWED_CUSTOM_OPS, report["custom"]
    assert "CaseFoldUTF8" in report["custom"]
    forbidden = {"PyFunc", "EagerPyFunc", "PyFuncStateless", "RandomStandardNormal", "RandomUniform",
                 "RandomUniformInt", "TruncatedNormal", "StatefulUniform", "StatefulStandardNormalV2"}
    assert not forbidden & set(report["ops"]), forbidden & set(report["ops"])
    assert "StatelessRandomNormalV2" in report["ops"] or "StatelessRandomNormal" in report["ops"]
    assert report["xla_functions"] == []


def test_server_session_path_matches_the_in_memory_model(exported, tmp_path):
    run_dir, path = exported
    config, model = run_lib.load_model(run_dir)
    seeds = [11, 12, 13]
    tokens = CaptionTokenizer(config.text).encode(CAPTIONS)
    ref = model.generate(tokens, seeds)
    ref_uint8 = np.round(np.clip(ref["images"], 0, 1) * 255).astype(np.uint8)
    out_file = tmp_path / "session.npz"
    # A fresh process that never imports t2i, loading as tensorflow_model_server does.
    _run(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # registers the tf-text kernels, as the server binary links them
        from tensorflow_serving.apis import prediction_log_pb2
        assert not any(m == "t2i" or m.startswith("t2i.") for m in sys.modules)
        tf.compat.v1.disable_eager_execution()
        with tf.compat.v1.Session(graph=tf.Graph()) as sess:
            meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], {str(path)!r})
            sig = meta.signature_def["serving_default"]
            feed = {{sig.inputs["captions"].name: np.array({CAPTIONS!r}, dtype=object),
                     sig.inputs["seed"].name: np.array({seeds!r}, np.int64)}}
            fetch = {{k: v.name for k, v in sig.outputs.items()}}
            first = sess.run(fetch, feed)
            second = sess.run(fetch, feed)
            # Warmup records replay through the same path.
            for raw in tf.compat.v1.io.tf_record_iterator({str(path / WARMUP_FILE)!r}):
                req = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
                sess.run(fetch, {{sig.inputs[k].name: tf.make_ndarray(v) for k, v in req.inputs.items()}})
        np.savez({str(out_file)!r}, images=first["images"], again=second["images"],
                 alignments=first["alignments"])
    """)
    got = np.load(out_file)
    assert got["images"].dtype == np.uint8 and got["images"].shape == (3, 60, 60, 1)
    np.testing.assert_array_equal(got["images"], got["again"])
    assert np.abs(got["images"].astype(int) - ref_uint8.astype(int)).max() <= 1
    np.testing.assert_allclose(got["alignments"], ref["alignments"], rtol=1e-4, atol=1e-5)


def test_seed_determinism_batch_independence_and_score(exported, loaded):
    run_dir, _ = exported
    serve = loaded.signatures["serving_default"]
    batch = serve(captions=tf.constant(CAPTIONS), seed=tf.constant([1, 2, 3], tf.int64))["images"].numpy()
    alone = serve(captions=tf.constant(CAPTIONS[1:2]), seed=tf.constant([2], tf.int64))["images"].numpy()
    assert np.abs(batch[1].astype(int) - alone[0].astype(int)).max() <= 1
    plain = loaded.signatures["plain"](captions=tf.constant(CAPTIONS), seed=tf.constant([1, 2, 3], tf.int64))
    np.testing.assert_array_equal(plain["images"].numpy(), batch)  # the run's sampler is plain
    other = serve(captions=tf.constant(CAPTIONS), seed=tf.constant([4, 5, 6], tf.int64))["images"].numpy()
    assert not np.array_equal(batch, other)
    trace = loaded.signatures["trace"](captions=tf.constant(CAPTIONS), seed=tf.constant([1, 2, 3], tf.int64))
    assert trace["canvases"].shape == (3, 3, 60, 60, 1)
    np.testing.assert_array_equal(trace["canvases"].numpy()[:, -1], trace["images"].numpy())
    # sample: the prior's noise times the temperature, as AlignDRAW.generate(temperature=).
    config, model = run_lib.load_model(run_dir)
    tokens = CaptionTokenizer(config.text).encode(CAPTIONS)
    sample = loaded.signatures["sample"]
    for temperature in (1.0, 0.5, 0.0):
        got = sample(captions=tf.constant(CAPTIONS), seed=tf.constant([1, 2, 3], tf.int64),
                     temperature=tf.fill([3], temperature))["images"].numpy()
        ref = np.round(np.clip(model.generate(tokens, [1, 2, 3], temperature=temperature)["images"], 0, 1) * 255)
        assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1, temperature
    other_seeds = sample(captions=tf.constant(CAPTIONS), seed=tf.constant([7, 8, 9], tf.int64),
                         temperature=tf.zeros([3]))["images"].numpy()
    np.testing.assert_array_equal(got, other_seeds)  # temperature 0: the seed no longer matters
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be a finite number >= 0"):
        sample(captions=tf.constant(CAPTIONS), seed=tf.constant([1, 2, 3], tf.int64),
               temperature=tf.constant([1.0, -1.0, 1.0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="captions and temperature must have the same batch"):
        sample(captions=tf.constant(CAPTIONS), seed=tf.constant([1, 2, 3], tf.int64), temperature=tf.ones([2]))
    # score = -(reconstruction + KL) with noise from seed 0, the same as the in-memory model.
    score = loaded.signatures["score"](captions=tf.constant(CAPTIONS), images=tf.constant(batch))["bound"].numpy()
    noise = model.noise_for_seeds([0, 0, 0])
    out = model({"images": batch.astype("float32") / 255.0, "tokens": tokens, "noise": noise})
    expected = -(out["reconstruction"].numpy() + out["kl"].numpy().sum(-1))
    np.testing.assert_allclose(score, expected, rtol=1e-4)
    assert np.all(score < 0)


@pytest.mark.parametrize("captions, seeds, message", [
    (["the digit 1 .", ""], [0, 1], "empty caption"),
    (["the digit " * 9], [0], "caption too long: this model takes at most 16 tokens"),
    ([b"the digit \xff\xfe"], [0], "not valid UTF-8"),
    (["the digit 1 .", "the digit 2 ."], [0], "same batch size"),
])
def test_bad_captions_fail_with_a_message(loaded, captions, seeds, message):
    serve = loaded.signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        serve(captions=tf.constant(captions), seed=tf.constant(seeds, tf.int64))


def test_versions_are_numbered_and_never_overwritten(exported):
    run_dir, path = exported
    base = path.parent
    second = export_model(run_dir, base)
    assert second.name == "2"
    with pytest.raises(T2IError, match="version 2 already exists"):
        export_model(run_dir, base, version=2)
    assert export_model(run_dir, base, version=7).name == "7"
    assert sorted(p.name for p in base.iterdir()) == ["1", "2", "7"]


def test_export_and_serving_share_the_contract():
    """The server reads the warmup file where the export writes it, under TF Serving's names."""
    from serving.server import MAX_WARMUP_RECORDS
    from serving.server import WARMUP_FILE as served
    from serving.server.servable import DEFAULT_SIGNATURE

    assert served.replace("\\", "/") == WARMUP_FILE == "assets.extra/tf_serving_warmup_requests"
    assert DEFAULT_SIGNATURE == "serving_default" and MAX_WARMUP_RECORDS == 1000
