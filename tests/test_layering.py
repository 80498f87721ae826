"""Dependencies run one way: library <- applications <- command line.

    t2i/            the library: imports none of the packages above it
    training/, export/, serving/   applications: import t2i, not each other
    benchmarks/, scripts/   import the library and applications, not tests/ (benchmarks may
                    import tests/fixtures/, the data written on disk, and nothing else of it)
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
BENCHMARKS_MAY_IMPORT = ("tests.fixtures",)  # data fixtures written on disk; no other test code


def imported_names(path: Path) -> set[str]:
    """Dotted names of every absolute import in a Python file: `import a.b` gives "a.b",
    `from a.b import c` gives "a.b.c" (c a module or a name in a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a Python file."""
    return {name.split(".")[0] for name in imported_names(path)}


def forbidden_imports(path: Path, forbidden: set[str], allowed=()) -> set[str]:
    """The imports of a file from a package in `forbidden`, except the modules in `allowed` and
    what is under them."""
    return {name for name in imported_names(path) if name.split(".")[0] in forbidden
            and not any(name == a or name.startswith(a + ".") for a in allowed)}


def modules(package: str) -> list[Path]:
    found = sorted((ROOT / package).rglob("*.py"))
    assert found, f"no modules under {package}/"
    return found


def upward(package: str, forbidden: set[str], allowed=()) -> dict[str, set[str]]:
    bad = {}
    for path in modules(package):
        hits = forbidden_imports(path, forbidden, allowed)
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


def test_imported_packages_sees_deferred_and_dotted_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os.path\nfrom . import x\n\ndef f():\n    from serving.client import main\n")
    assert imported_packages(module) == {"os", "serving"}


def test_an_allowed_module_allows_itself_and_what_is_under_it_only(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import tests.fixtures\nfrom tests import fixtures\nfrom tests.fixtures import coco\n"
                      "from tests.fixtures.coco import make_coco_fixture\nimport t2i\n")
    assert forbidden_imports(module, {"tests", "t2i_cli"}, BENCHMARKS_MAY_IMPORT) == set()
    module.write_text("from tests.fixtures.coco import make_coco_fixture\nimport tests\n"
                      "from tests import fixtures, harness\nimport tests.fixtures_old\n\n"
                      "def f():\n    from tests.runs import copy_run\n")
    assert forbidden_imports(module, {"tests", "t2i_cli"}, BENCHMARKS_MAY_IMPORT) == {
        "tests", "tests.harness", "tests.fixtures_old", "tests.runs.copy_run"}


def test_library_imports_no_application():
    assert upward("t2i", ABOVE_LIBRARY) == {}


@pytest.mark.parametrize("package", sorted(APPLICATIONS))
def test_applications_import_neither_each_other_nor_the_command_line(package):
    assert upward(package, (ABOVE_LIBRARY - {package})) == {}


def test_benchmarks_import_only_test_fixtures_and_not_the_command_line():
    assert upward("benchmarks", {"tests", "t2i_cli"}, allowed=BENCHMARKS_MAY_IMPORT) == {}


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
