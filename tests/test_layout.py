"""The package's shape: the EnOS client never needs Pulumi, no import cycles, the public names."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import enos_pulumi
from enos_pulumi.enos import errors

PACKAGE = Path(enos_pulumi.__file__).resolve().parent
REPO_ROOT = PACKAGE.parent
# The checkout's (or unpacked sdist's) README and docs: REPO_ROOT is site-packages when the wheel is tested.
CHECKOUT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level(tree: ast.Module) -> list[ast.stmt]:
    """The module's top-level statements, with the bodies of ``if TYPE_CHECKING:`` blocks spliced in: a
    type-only import is a dependency too (a cycle through one is still a design cycle)."""
    body: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            body.extend(node.body)
        else:
            body.append(node)
    return body


def _imports(path: Path, modules: set[str] | None = None, *, names: bool = False) -> set[str]:
    """Modules ``path`` depends on: its module-level imports, ``if TYPE_CHECKING`` blocks included
    (imports inside functions, made on first use, are left out).

    ``from package import submodule`` depends on the submodule only (given ``modules``, the known ones);
    ``names``: every ``package.name`` of a ``from`` import too.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in _module_level(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            imported = {f"{prefix}.{alias.name}" for alias in node.names}
            submodules = imported & (modules or set())
            found.update(imported if names else submodules)
            if names or imported - submodules:
                found.add(prefix)
    return found


def _package_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(modules)
    return {
        name: {m for m in _imports(path, known) if m in known and m != name} for name, path in modules.items()
    }


def test_the_enos_subpackage_never_imports_pulumi_nor_the_pulumi_side() -> None:
    for path in (PACKAGE / "enos").rglob("*.py"):
        for imported in _imports(path, names=True):
            assert not imported.startswith("pulumi"), f"{path.name} imports {imported}"
            assert not imported.startswith("enos_pulumi.") or imported.startswith("enos_pulumi.enos"), (
                f"{path.name} imports {imported}, outside enos_pulumi.enos"
            )


def test_the_client_and_the_simulator_load_without_pulumi() -> None:
    code = (
        "import sys, enos_pulumi.enos, enos_pulumi.simulator, enos_pulumi; "
        "loaded = sorted(m for m in sys.modules if m == 'pulumi' or m.startswith('pulumi.')); "
        "print(loaded)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_package_has_no_import_cycle() -> None:
    graph = _package_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])


def test_every_error_class_is_exported_from_the_package() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.EnosError)
    }
    assert classes <= set(enos_pulumi.__all__)
    for name in enos_pulumi.__all__:
        assert getattr(enos_pulumi, name) is not None


def test_every_error_the_docs_name_is_importable_from_the_package() -> None:
    texts = [CHECKOUT / "README.md", *sorted((CHECKOUT / "docs").glob("*.md"))]
    named = {m for path in texts for m in re.findall(r"\b([A-Z][A-Za-z]+Error)\b", path.read_text("utf-8"))}
    ours = {name for name in named if hasattr(errors, name)}
    assert "PipelineLeftPausedError" in ours  # the docs do name it
    missing = sorted(name for name in ours if name not in enos_pulumi.__all__)
    assert not missing, f"documented but not exported from enos_pulumi: {missing}"


def test_stage_state_reset_is_public() -> None:
    from enos_pulumi.resource import StageStateReset

    assert enos_pulumi.StageStateReset is StageStateReset
    assert "StageStateReset" in enos_pulumi.__all__


def test_type_only_imports_count_as_dependencies() -> None:
    source = [
        "from typing import TYPE_CHECKING",
        "import json",
        "if TYPE_CHECKING:",
        "    from .server import Simulator",
    ]
    tree = ast.parse("\n".join(source))
    modules = [node.module for node in _module_level(tree) if isinstance(node, ast.ImportFrom)]
    assert modules == ["typing", "server"]


def test_the_readme_module_map_names_every_module() -> None:
    text = (CHECKOUT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Development", 1)[1].split("### Building", 1)[0]
    named = set(re.findall(r"`(?:enos_pulumi/)?([A-Za-z_][A-Za-z0-9_]*)/?`", section))
    modules = {
        path.stem if path.name != "__init__.py" else path.parent.name
        for path in PACKAGE.rglob("*.py")
        if path.name != "__main__.py"
    }
    missing = sorted(modules - named - {"enos_pulumi"})
    assert not missing, f"modules the README's module map does not name: {missing}"
