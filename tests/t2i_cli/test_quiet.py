"""TensorFlow's start-up chatter stays off the terminal of `t2i` commands (t2i_cli/quiet.py)."""

import subprocess
import sys

from t2i_cli.quiet import filter_chatter

STARTUP = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796606687.713254   29225 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1796606702.645766   29234 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
I0000 00:00:1796606702.100000   29234 cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
E0000 00:00:1796654333.391326    8979 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512. Falling back to the default Eigen-based implementation if present.
"""
KEPT = """W0000 00:00:1796606702.700000   29234 op_level_cost_estimator.cc:699] Error in PredictCost() for the op
E0000 00:00:1796654333.391326    8979 util.cc:140] some other error of util.cc
t2i: warning: words not in the vocabulary are read as [UNK]: zebra
"""


def test_filter_keeps_everything_but_the_known_start_up_lines():
    assert filter_chatter(STARTUP + KEPT) == KEPT
    assert filter_chatter(KEPT) == KEPT


def test_tensorflow_imports_and_finds_its_devices_without_chatter():
    code = ("from t2i_cli import quiet; quiet.install(); import tensorflow as tf; "
            "print(int(tf.constant(2) * 3)); import keras; print(keras.backend.backend())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6", "tensorflow"]
    noisy = [line for line in done.stderr.splitlines()
             if line[:5] in ("E0000", "W0000", "I0000") or "absl::InitializeLog" in line]
    assert not noisy, done.stderr


def test_a_failing_import_still_reports_its_error():
    code = ("import sys; from t2i_cli import quiet; quiet.install(); "
            "sys.path.insert(0, sys.argv[1]); import tensorflow")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as fake:
        (Path(fake) / "tensorflow.py").write_text(
            "import sys\nprint('broken tensorflow', file=sys.stderr)\nraise ImportError('no tf')\n")
        done = subprocess.run([sys.executable, "-c", code, fake], capture_output=True, text=True,
                              timeout=120)
    assert done.returncode != 0
    assert "broken tensorflow" in done.stderr and "ImportError: no tf" in done.stderr


def _after_import(then: str) -> subprocess.CompletedProcess:
    """A process that installs the filter, imports TensorFlow, then runs `then` (Python)."""
    code = "import os, sys; from t2i_cli import quiet; quiet.install(); import tensorflow\n" + then
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)


def test_chatter_after_the_import_is_dropped_and_the_rest_kept_in_order():
    lines = (STARTUP + KEPT).splitlines(keepends=True)
    writes = "".join(f"os.write(2, {line.encode()!r})\n" for line in lines)
    done = _after_import(writes + "print('to stderr', file=sys.stderr)\n"
                         "os.write(2, b'\\r 50%'); os.write(2, b'\\r100%\\n')\nprint('out')")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"out\n"
    assert done.stderr.decode() == KEPT + "to stderr\n\r 50%\r100%\n"


def test_a_crash_after_the_import_still_gets_its_last_words_out():
    done = _after_import("os.write(2, b'F0000 check failed: the last words\\n'); os.abort()")
    assert done.returncode != 0
    assert done.stderr.decode() == "F0000 check failed: the last words\n"
