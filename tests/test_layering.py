"""Dependencies run one way: library <- applications <- command line.

    t2i/            the library: imports none of the packages above it
    training/, export/, serving/   applications: import t2i, not each other
    benchmarks/, scripts/   import the library and applications, not tests/
    t2i_cli/        the `t2i` command: imports everything, nothing imports it

Checked by parsing every module's imports (including ones inside functions)
with `ast`, so a deferred import cannot hide an upward edge.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPLICATIONS = {"training", "export", "serving"}
ABOVE_LIBRARY = APPLICATIONS | {"benchmarks", "tests", "t2i_cli"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules(package: str) -> list[Path]:
    found = sorted((ROOT / package).rglob("*.py"))
    assert found, f"no modules under {package}/"
    return found


def upward(package: str, forbidden: set[str]) -> dict[str, set[str]]:
    bad = {}
    for path in modules(package):
        hits = imported_packages(path) & forbidden
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


def test_imported_packages_sees_deferred_and_dotted_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os.path\nfrom . import x\n\ndef f():\n    from serving.client import main\n")
    assert imported_packages(module) == {"os", "serving"}


def test_library_imports_no_application():
    assert upward("t2i", ABOVE_LIBRARY) == {}


@pytest.mark.parametrize("package", sorted(APPLICATIONS))
def test_applications_import_neither_each_other_nor_the_command_line(package):
    assert upward(package, (ABOVE_LIBRARY - {package})) == {}


def test_benchmarks_do_not_import_tests_or_the_command_line():
    assert upward("benchmarks", {"tests", "t2i_cli"}) == {}


def test_scripts_do_not_import_test_helpers():
    assert upward("scripts", {"tests"}) == {}


MODEL_CODE = ["t2i/model.py", "t2i/losses.py", "t2i/samplers.py", "t2i/guidance.py",
              *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "t2i" / "layers").glob("*.py")),
              *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "t2i" / "sharpen").glob("*.py"))]


@pytest.mark.parametrize("module", MODEL_CODE)
def test_model_code_is_backend_agnostic(module):
    """The model, its layers, losses and samplers are Keras 3 on keras.ops/keras.random: no
    TensorFlow import, even a deferred one (TensorFlow-only pieces live in their own modules,
    e.g. t2i/seed_noise.py)."""
    assert "tensorflow" not in imported_packages(ROOT / module)
