"""The package's shape: no import cycles, one module that starts ffmpeg, model files apart."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nvfilter"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    """Every nvfilter module and the nvfilter modules it imports (at any depth in its code)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_the_package_has_no_import_cycles():
    graph = imports()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, "import cycle: " + " -> ".join(path + [name])
        if name in done:
            return
        for target in graph[name]:
            visit(target, path + [name])
        done.add(name)

    for name in graph:
        visit(name, [])


def package_of(module: str) -> str:
    """A module's package below nvfilter (nvfilter.encode, ...), or the module itself at the top."""
    parts = module.split(".")
    return ".".join(parts[:2])


def packages() -> dict[str, set[str]]:
    """The import graph between packages (a top-level module counts as one of its own)."""
    graph: dict[str, set[str]] = {}
    for module, targets in imports().items():
        home = package_of(module)
        graph.setdefault(home, set()).update(package_of(t) for t in targets)
    return {name: targets - {name} for name, targets in graph.items()}


def test_the_packages_have_no_import_cycles():
    graph = packages()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, "package cycle: " + " -> ".join(path + [name])
        if name in done:
            return
        for target in graph.get(name, ()):
            visit(target, path + [name])
        done.add(name)

    for name in graph:
        visit(name, [])


def test_encode_and_decode_are_siblings_and_read_models_from_below():
    """Reading a model into frames and scoring it (models/reads.py) is below encode, decode
    and eval: encode never imports decode, nor decode encode, and eval neither."""
    graph = packages()
    assert "nvfilter.decode" not in graph["nvfilter.encode"]
    assert "nvfilter.encode" not in graph["nvfilter.decode"]
    assert not graph["nvfilter.eval"] & {"nvfilter.decode", "nvfilter.encode"}
    assert "nvfilter.models" in graph["nvfilter.encode"] & graph["nvfilter.decode"]


def test_the_graph_sees_imports():
    graph = imports()
    assert "nvfilter.io.media" in graph["nvfilter.io.audio"]
    assert "nvfilter.models.field" in graph["nvfilter.models.siren"]


def test_one_module_starts_processes():
    starters = {module_name(p) for p in PACKAGE.rglob("*.py") if "subprocess" in imports_of(p)}
    assert starters == {"nvfilter.io.media.process"}


def test_model_files_do_not_import_each_other():
    graph = imports()
    models = {m for m in graph if m.startswith("nvfilter.models.")}
    for name in models:
        assert not (graph[name] & models) - {"nvfilter.models.field", "nvfilter.models.spec"}, name


def test_one_function_opens_a_nvw_for_the_commands():
    callers = {
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if "nvw.load(" in p.read_text() and module_name(p) != "nvfilter.io.nvw"
    }
    # inputs.open_nvw for every command; encode reopens its own parts and checkpoints to resume
    own = {"nvfilter.encode.encoder", "nvfilter.encode.parts", "nvfilter.encode.part_store"}
    assert callers <= {"nvfilter.io.inputs"} | own, callers


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_package_is_installed():
    """pyproject.toml lists the packages setuptools installs: a new one left out installs a
    nvfilter that cannot import it (the editable install of a checkout hides that)."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]
                 ["setuptools"]["packages"])  # fmt: skip
    found = {module_name(p.parent) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, found - listed


LONGEST_FUNCTION = 65
"""Lines a function may take, its signature and docstring included ("about 60")."""


def test_functions_stay_short():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{module_name(path)}.{node.name}: {lines} lines")
    assert not long, long
