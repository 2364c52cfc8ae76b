"""The layers: webapp -> tasks -> core, core split into packages that do not lean on each other.

core/ is the framework-free domain (no Flask, Celery or web server). Inside it, the shared
vocabulary (models, settings, errors, logs, keys) sits below the packages; core/stream and
core/screening never import each other; core/screening's stages import only the stages before
them (text, embedding, rules, reference, scoring, then the engine that walks a batch through
them); the offline training recipe is used by the evaluation alone, never on the hot path;
core/quality measures screening and nothing imports it; and no chain of imports comes back to
where it started. Under tests/, what tests share lives in tests/factories: no file imports a test
module or a conftest (fixtures are used by argument).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.factories import ROOT

CORE = ROOT / "core"
FORBIDDEN = {"flask", "werkzeug", "celery", "kombu", "gunicorn", "gevent", "webapp", "tasks"}
SHARED = {"core.models", "core.settings", "core.errors", "core.logs", "core.keys"}
# core/screening's stages in the order a batch meets them; each imports only those before it.
STAGES = ("text", "embedding", "rules", "reference", "scoring", "engine")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    """The dotted name of a source file under the repository."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    """Whether a dotted name is a source file or package of the repository."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports, anywhere in its body (type-only ones too).

    `from package import module` names the submodule; `from module import name` the module.
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if _is_module(submodule) else node.module)
    return found


def _graph(*packages: str) -> dict[str, set[str]]:
    """Module -> the project modules it imports, for the given top-level packages."""
    files = [p for package in packages for p in (ROOT / package).rglob("*.py")]
    modules = {_module_name(path): path for path in files}
    return {name: {m for m in _imports(path) if m in modules} for name, path in modules.items()}


def _package(module: str) -> str:
    """core.<package> for a module inside one, else the module itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "core" else parts[0]


def test_no_core_module_imports_a_framework_or_an_outer_layer() -> None:
    offenders = {
        name: sorted({m.split(".")[0] for m in _imports(path)} & FORBIDDEN)
        for name, path in ((_module_name(p), p) for p in CORE.rglob("*.py"))
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_tasks_never_import_the_web_app() -> None:
    graph = _graph("tasks")
    imported = {m for path in (ROOT / "tasks").rglob("*.py") for m in _imports(path)}
    assert graph and not {m for m in imported if m.split(".")[0] == "webapp"}


def test_shared_core_modules_import_no_core_package() -> None:
    graph = _graph("core")
    assert {name: sorted(deps - SHARED) for name, deps in graph.items() if name in SHARED} == {
        name: [] for name in SHARED
    }


def test_stream_and_screening_do_not_import_each_other() -> None:
    graph = _graph("core")
    crossing = {
        (name, dep)
        for name, deps in graph.items()
        for dep in deps
        if {_package(name), _package(dep)} == {"core.stream", "core.screening"}
    }
    assert crossing == set()


def _stage(module: str) -> str | None:
    """The core/screening stage a module belongs to, or None outside them."""
    parts = module.split(".")
    return parts[2] if parts[:2] == ["core", "screening"] and len(parts) > 2 else None


def test_each_screening_stage_imports_only_the_stages_before_it() -> None:
    graph = _graph("core")
    assert {_stage(name) for name in graph} - {None} == set(STAGES)
    upward = {
        (name, dep)
        for name, deps in graph.items()
        for dep in deps
        if (here := _stage(name)) and (there := _stage(dep))
        if STAGES.index(there) > STAGES.index(here)
    }
    assert upward == set()


def test_the_training_recipe_is_used_only_by_the_evaluation_and_make_model() -> None:
    graph = _graph("core", "webapp", "tasks", "scripts", "bench")
    users = {
        name
        for name, deps in graph.items()
        if any(_package(d) == "core.training" for d in deps)
        and _package(name) not in {"core.training", "core.quality"}
    }
    assert users == {"scripts.train_model"}


def test_nothing_in_core_imports_quality_but_quality_itself() -> None:
    graph = _graph("core")
    users = {
        name
        for name, deps in graph.items()
        if any(_package(d) == "core.quality" for d in deps) and _package(name) != "core.quality"
    }
    assert users == set()


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph("core", "webapp", "tasks")
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_no_core_module_is_longer_than_the_house_limit() -> None:
    lengths = {_module_name(p): len(p.read_text().splitlines()) for p in CORE.rglob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_importing_every_core_module_loads_no_framework() -> None:
    modules = sorted(_module_name(p) for p in CORE.rglob("*.py") if p.name != "__init__.py")
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _is_test_module(name: str) -> bool:
    """Whether a dotted (maybe relative) name is a test module, a conftest or inside one."""
    return any(part == "conftest" or part.startswith("test_") for part in name.split("."))


def _test_modules_imported(path: Path) -> set[str]:
    """The test modules (test_*) and conftest modules a file imports, relative imports too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if _is_test_module(alias.name))
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if _is_test_module(module):
                found.add(module)
            else:  # `from tests.tasks import conftest`, `from . import test_pipeline`
                dot = "." if node.module else ""
                names = (f"{module}{dot}{alias.name}" for alias in node.names)
                found.update(name for name in names if _is_test_module(name))
    return found


def test_no_file_under_tests_imports_a_test_module_or_a_conftest() -> None:
    imported = {
        str(path.relative_to(ROOT)): sorted(names)
        for path in (ROOT / "tests").rglob("*.py")
        if (names := _test_modules_imported(path))
    }
    assert imported == {}
