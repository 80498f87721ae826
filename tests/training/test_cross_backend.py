"""A run trained under the JAX backend loads, generates and exports under TensorFlow."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from export.export_savedmodel import export_model
from t2i import run as run_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

JAX_SCRIPT = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    assert keras.backend.backend() == "jax"
    from t2i import run as run_lib
    from tests.runs import VISIBLE, train_tiny_run
    # XLA-compiled steps, as JAX trains (eager JAX recompiles the drawing loop every step).
    run_dir = train_tiny_run(sys.argv[1], {**VISIBLE, "train.jit_compile": True})
    _, model = run_lib.load_model(run_dir)
    rng = np.random.default_rng(0)
    feed = {"tokens": rng.integers(2, 24, (4, 12)),
            "noise": rng.normal(size=(4, model.num_steps, model.latent_dim)).astype("float32")}
    out = model.predict(feed, verbose=0)
    np.savez(sys.argv[2], images=np.asarray(out["images"]), alignments=np.asarray(out["alignments"]),
             **feed)
""")


def test_jax_checkpoint_loads_generates_and_exports_under_tensorflow(tmp_path):
    run_dir, arrays = tmp_path / "jax-run", tmp_path / "jax.npz"
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(run_dir), str(arrays)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert run_lib.load_run_info(run_dir)["keras_backend"] == "jax"

    jax = np.load(arrays)
    _, model = run_lib.load_model(run_dir)
    out = model.predict({"tokens": jax["tokens"], "noise": jax["noise"]}, verbose=0)
    assert 0.05 < jax["images"].mean() < 0.95  # a non-trivial picture to compare
    np.testing.assert_allclose(out["images"], jax["images"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["alignments"], jax["alignments"], rtol=1e-4, atol=1e-5)

    path = export_model(run_dir, tmp_path / "models" / "t2i")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    images = serve(captions=tf.constant(["the digit 3 is at the top of the digit 1 ."]),
                   seed=tf.constant([0], tf.int64))["images"]
    assert images.dtype == tf.uint8 and images.shape == (1, 60, 60, 1)
