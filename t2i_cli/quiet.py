"""TensorFlow's start-up chatter, kept off the terminal of `t2i` commands.

Importing TensorFlow, and its first look at the devices, write C++ log lines
straight to file descriptor 2, before `TF_CPP_MIN_LOG_LEVEL` applies to all of
them: on a machine without a GPU, "Could not find cuda drivers", "failed call
to cuInit", "All log messages before absl::InitializeLog() ...". `install()`
puts an import hook in place so that, whenever a command first imports
TensorFlow, the import and the device set-up run with descriptor 2 captured;
afterwards the captured lines are written back except the known start-up
chatter (`CHATTER`). Anything else, warnings that matter included, still
reaches the user, and so does an import that fails.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

# Start-up lines that say nothing to a user of `t2i`: no GPU (CUDA, cuDNN, TensorRT stubs and
# plugin registration), the absl banner, oneDNN and CPU-feature notices.
CHATTER = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|^[IWE]\d{4} [\d:.]+\s+\d+ (cudart_stub|cuda_platform|cuda_executor|cuda_dnn|cuda_fft|"
    r"cuda_blas|cuda_diagnostics|gpu_device|port|cpu_feature_guard|computation_placer|"
    r"tensorrt|dso_loader|plugin_registry)\.cc:\d+\]"
    r"|^To enable the following instructions: .* in other operations, rebuild TensorFlow"
    r"|^This TensorFlow binary is optimized to use available CPU instructions")


def filter_chatter(text: str) -> str:
    """`text` without the lines `CHATTER` matches."""
    return "".join(line for line in text.splitlines(keepends=True) if not CHATTER.search(line))


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self._loader.exec_module(module)
                module.config.list_physical_devices()  # the device look-up logs too
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                sys.stderr.write(filter_chatter(captured.read().decode("utf-8", errors="replace")))
                sys.stderr.flush()


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level `tensorflow` package, once."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet the first import of TensorFlow in this process (no-op once it is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietFinder())
