"""TensorFlow's chatter, kept off the terminal of `t2i` commands.

Importing TensorFlow, and its first look at the devices, write C++ log lines
straight to file descriptor 2, before `TF_CPP_MIN_LOG_LEVEL` applies to all of
them: on a machine without a GPU, "Could not find cuda drivers", "failed call
to cuInit", "All log messages before absl::InitializeLog() ...". Later, when a
graph is optimised, oneDNN can log an error-looking notice that it falls back
to Eigen for boolean tensors (seen during every `t2i generate` on an AVX-512 CPU). `install()` puts an import hook in
place so that, whenever a command first imports TensorFlow, the import and the
device set-up run with descriptor 2 captured; afterwards the captured lines are
written back except the known chatter (`CHATTER`), and descriptor 2 stays
behind a small filter process that drops the same lines for the rest of the
command. Anything else, warnings that matter included, still reaches the user,
and so does an import that fails. The filter is a process, not a thread, so
that what a crashing command writes last (an abort's message) still gets out.
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.machinery
import os
import re
import subprocess
import sys
import tempfile

# Lines that say nothing to a user of `t2i`: no GPU (CUDA, cuDNN, TensorRT stubs and plugin
# registration), the absl banner, oneDNN and CPU-feature notices, and oneDNN's fallback to Eigen
# for data types other than float (logged as an error, on CPUs with AVX-512 too).
CHATTER = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|^[IWE]\d{4} [\d:.]+\s+\d+ (cudart_stub|cuda_platform|cuda_executor|cuda_dnn|cuda_fft|"
    r"cuda_blas|cuda_diagnostics|gpu_device|port|cpu_feature_guard|computation_placer|"
    r"tensorrt|dso_loader|plugin_registry)\.cc:\d+\]"
    r"|^To enable the following instructions: .* in other operations, rebuild TensorFlow"
    r"|^This TensorFlow binary is optimized to use available CPU instructions"
    r"|^E\d{4} [\d:.]+\s+\d+ util\.cc:\d+\] oneDNN supports DT_\w+ only on platforms with AVX-512\. "
    r"Falling back to the default Eigen-based implementation if present\.$")

# The filter process: copies its standard input to its standard output except CHATTER's
# lines, until end of input (when every writer of descriptor 2 has closed it). A line redrawn
# in place (`\r`) passes at once, other parts of a line when the line ends. Ctrl-C, which
# reaches the whole process group, leaves it running to pass on what the command says last.
_FILTER = """
import os, re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
chatter = re.compile(sys.argv[1])
pending = b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *lines, pending = (pending + chunk).split(b"\\n")
    out = b"".join(line + b"\\n" for line in lines
                   if not chatter.search(line.decode("utf-8", "replace")))
    if b"\\r" in pending:  # a line redrawn in place (a progress bar) goes out now; other
        out, pending = out + pending, b""  # parts of a line wait for its end
    if out:
        os.write(1, out)
if pending:
    os.write(1, pending)
"""


def filter_chatter(text: str) -> str:
    """`text` without the lines `CHATTER` matches."""
    return "".join(line for line in text.splitlines(keepends=True) if not CHATTER.search(line))


def _filter_from_now_on(terminal: int) -> None:
    """Descriptor 2 -> a filter process -> `terminal` (a descriptor of the real stderr), for the
    rest of this process; left as it is if the filter cannot be started."""
    try:
        read, write = os.pipe()
        child = subprocess.Popen([sys.executable, "-S", "-c", _FILTER, CHATTER.pattern], stdin=read,
                                 stdout=terminal, stderr=terminal, close_fds=True)
    except OSError:
        return
    os.close(read)
    os.dup2(write, 2)
    os.close(write)

    def stop():  # the filter's input ends with this process's last copy of descriptor 2
        sys.stderr.flush()
        os.dup2(terminal, 2)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a child of the command still holds descriptor 2
            pass

    atexit.register(stop)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        terminal = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            imported = False
            try:
                self._loader.exec_module(module)
                module.config.list_physical_devices()  # the device look-up logs too
                imported = True
            finally:
                sys.stderr.flush()
                os.dup2(terminal, 2)
                if imported:
                    _filter_from_now_on(terminal)
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
