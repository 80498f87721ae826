"""The model code is backend-agnostic: run it under JAX in a separate process."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import numpy as np, keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from t2i import config as C
    from t2i.model import AlignDRAW
    model = AlignDRAW.from_config_dataclass(C.tiny(), seed=0)
    rng = np.random.default_rng(0)
    x = {"images": rng.random((4, 60, 60, 1)).astype("float32"),
         "tokens": rng.integers(2, 24, (4, 12))}
    out = model(x)
    assert out["logits"].shape == (4, 60, 60, 1) and out["kl"].shape == (4, 3)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-2, rho=0.9, epsilon=1e-6, clipnorm=10))
    before = [np.array(w) for w in model.trainable_weights]
    logs = model.train_on_batch(x, return_dict=True)
    assert np.isfinite(logs["loss"]), logs
    assert abs(logs["loss"] - logs["reconstruction_loss"] - logs["kl_loss"]) < 1e-3 * logs["loss"], logs
    changed = sum(not np.allclose(a, np.array(w)) for a, w in zip(before, model.trainable_weights))
    assert changed >= len(before) // 2, (changed, len(before))
    images = model.generate(x["tokens"], seeds=[0, 1, 2, 3])["images"]
    assert images.shape == (4, 60, 60, 1) and 0 <= images.min() and images.max() <= 1
    print("JAX-OK", logs["loss"])
""")


def test_forward_and_training_step_under_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "JAX-OK" in proc.stdout
