"""Every command block of the README runs as written on a fresh clone after the quickstart.

The blocks run in order in one bash session, with small sizes (`small`: the `tiny` presets,
one step an epoch, a few test examples), in an empty folder where `runs/quickstart` is what
the quickstart leaves (here: a copy of the shipped model, which the quickstart fine-tunes).
A block is either run or listed in `NOT_RUN` with the reason; a new block that is neither
fails the test.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# First command of a block -> why the test does not run it.
NOT_RUN = {
    "bash scripts/quickstart.sh": "the two setup commands themselves (they install into .venv)",
    "docker run": "Docker is not available where the tests run",
    "t2i train --preset coco_32": "needs the COCO files, which cannot be downloaded",
    "pip install -e '.[demo]'": "`t2i demo` serves until stopped; tests/serving/test_demo.py runs it",
    "t2i train --preset mnist_captions --out runs/mnist --strategy mirrored": "several GPUs or machines",
    "pip install jax": "installs packages; tests/t2i/test_jax_backend.py runs the JAX backend",
}


def blocks() -> list[tuple[int, str]]:
    """(line number, text) of every ```bash block of the README."""
    out, lines, start = [], None, 0
    for number, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1):
        if line.strip() == "```bash":
            lines, start = [], number
        elif line.strip() == "```" and lines is not None:
            out.append((start, "\n".join(lines)))
            lines = None
        elif lines is not None:
            lines.append(line)
    return out


def commands(text: str) -> list[str]:
    """The block's commands: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s+)#(\s.*)?$", "", line).strip()
        if line:
            out.append(line)
    return out


def small(command: str) -> str:
    """The command with small sizes."""
    if command.startswith("t2i train"):
        if "--resume" in command:
            return command + " --epochs 2"  # the run's own sizes; one more epoch
        command = re.sub(r"--epochs \d+", "", command)
        if "--train.init_from pretrained" not in command:
            command = command.replace("--preset mnist_captions", "--preset tiny")
        command = command.replace("--preset scenes_32", "--preset scenes_tiny")
        return (command + " --epochs 1 --steps-per-epoch 1 --data.validation_examples 8"
                " --data.test_examples 12 --train.sample_every 0")
    if command.startswith("t2i evaluate"):
        command = re.sub(r"--examples \d+", "", command)
        return (command + " --examples 12 --iw-examples 2 --ssi-captions 2 --samples 2"
                " --retrieval-queries 2 --candidates 4 --probe-samples 1 --probe-temperatures 0")
    if command.startswith("t2i slides"):
        return command + " --samples 1"
    if command == ". .venv/bin/activate":
        return "true  # the test's Python is the environment"
    return command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_block_is_run_or_listed_with_a_reason():
    firsts = [commands(text)[0] for _, text in blocks()]
    for key in NOT_RUN:
        assert any(f.startswith(key) for f in firsts), f"NOT_RUN lists {key!r}, which no block starts with"


# The packages and folders the README's layout section describes.
LAID_OUT = ("t2i", "training", "export", "serving", "t2i_cli", "benchmarks", "scripts")


def layout_section() -> str:
    """The plain code block under "## Layout"."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```\n", text.index("\n## Layout\n")) + 4
    return text[start:text.index("```", start)]


def test_layout_section_names_every_module_and_folder():
    section = layout_section()
    missing = []
    for top in LAID_OUT:
        for path in sorted((ROOT / top).rglob("*")):
            if "__pycache__" in path.parts:
                continue
            if path.is_dir():
                if not re.search(rf"\b{re.escape(path.name)}/", section):
                    missing.append(f"{path.relative_to(ROOT)}/")
            elif path.suffix in (".py", ".sh") and path.stem not in ("__init__", "__main__"):
                if not re.search(rf"\b{re.escape(path.stem)}\b", section):
                    missing.append(str(path.relative_to(ROOT)))
    assert missing == [], f"README's layout section does not mention: {missing}"


def test_readme_blocks_run_as_written(tmp_path):
    script = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    ran = 0
    for line, text in blocks():
        cmds = commands(text)
        if any(cmds[0].startswith(key) for key in NOT_RUN):
            continue
        ran += 1
        script.append(f"echo '--- README block at line {line}' >&2")
        script += [small(c) for c in cmds]
    assert ran >= 6
    work = tmp_path / "fresh"
    work.mkdir()
    (work / "scripts").symlink_to(ROOT / "scripts")
    shutil.copytree(ROOT / "t2i" / "pretrained" / "mnist_captions", work / "runs" / "quickstart")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHON=sys.executable, TF_CPP_MIN_LOG_LEVEL="2",
               T2I_SCENES_CACHE=str(tmp_path / "scenes-cache"))
    grpc_port, rest_port = _free_port(), _free_port()  # the README's 8500 and 8501 may be taken
    text = "\n".join(script).replace("8501", str(rest_port)).replace("8500", str(grpc_port))
    done = subprocess.run(["bash", "-c", text], cwd=work, env=env, capture_output=True, text=True,
                          timeout=1500)
    assert done.returncode == 0, "\n".join(["$ " + c for c in script[2:]]) + "\n" + done.stderr[-4000:]
    for path in ("out.png", "out.npz", "report/metrics.json", "models/t2i/1/saved_model.pb", "stop.png"):
        assert (work / path).is_file(), path
