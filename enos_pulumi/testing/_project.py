"""A Pulumi project directory as the CLI and the Python language host read it: ``Pulumi.yaml``'s name,
``main:`` and ``config:`` defaults, the program's entry file, and the process settings the program runs
under (cwd the project directory, the program directory first on ``sys.path``, the CLI's environment).

Read in Pulumi's Python language host (``sdk/python/cmd/pulumi-language-python-exec``: ``os.chdir`` to
the project directory, then ``runpy.run_path`` of the program, which puts a program directory first on
``sys.path``) and in the project file's ``config:`` rules (a bare key belongs to the project; ``default:``
or ``value:`` or a plain value applies where the stack config has none).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["config_defaults", "full_key", "program_main", "project_document", "project_name", "running_in"]


def project_document(project_dir: Path) -> dict[str, Any]:
    """``Pulumi.yaml`` of ``project_dir`` as a mapping (empty when there is none)."""
    import yaml

    project_file = project_dir / "Pulumi.yaml"
    if not project_file.exists():
        return {}
    document = yaml.safe_load(project_file.read_text(encoding="utf-8")) or {}
    return document if isinstance(document, dict) else {}


def project_name(project_dir: Path) -> str:
    name = project_document(project_dir).get("name")
    if not isinstance(name, str) or not name:
        raise FileNotFoundError(
            f"no Pulumi project at {project_dir}: give the directory that holds the program's Pulumi.yaml "
            f"(with a name:), or pass project=..."
        )
    return name


def full_key(key: str, project: str) -> str:
    """A config key as the CLI hands it on: a bare key is the project's own."""
    return key if ":" in key else f"{project}:{key}"


def config_defaults(project_dir: Path, project: str) -> dict[str, Any]:
    """The ``config:`` values of ``Pulumi.yaml`` that apply when the stack config does not set the key."""
    defaults: dict[str, Any] = {}
    section = project_document(project_dir).get("config") or {}
    for key, spec in section.items() if isinstance(section, dict) else ():
        if isinstance(spec, dict) and ("default" in spec or "value" in spec):
            defaults[full_key(str(key), project)] = spec["value" if "value" in spec else "default"]
        elif not isinstance(spec, dict):
            defaults[full_key(str(key), project)] = spec
    return defaults


def program_main(program_dir: Path) -> Path:
    """The program's entry file, as the Python language host finds it: ``main:`` of ``Pulumi.yaml`` (a
    file, or a directory holding ``__main__.py``), else ``__main__.py`` next to it."""
    main = program_dir
    document = project_document(program_dir)
    if isinstance(document.get("main"), str):
        main = program_dir / document["main"]
    entry = main / "__main__.py" if main.is_dir() else main
    if not entry.is_file():
        raise FileNotFoundError(
            f"no Pulumi program at {entry}: give the directory of a Pulumi.yaml whose program is "
            f"__main__.py (or whose main: names it)"
        )
    return entry


@contextlib.contextmanager
def running_in(project_dir: Path, entry: Path, env: Mapping[str, str] | None) -> Iterator[str]:
    """The process as the language host sets it up for the program, restored afterwards: cwd
    ``project_dir``, ``env`` as ``os.environ`` (when given). Yields what to hand ``runpy.run_path``: the
    program's directory when the entry is its ``__main__.py`` (``runpy`` then puts that directory first on
    ``sys.path``, so sibling modules import), else the file. Modules imported from the program's
    directory are dropped afterwards: the next run imports them afresh, as a new process would."""
    target = entry.parent if entry.name == "__main__.py" else entry
    before_cwd, before_env, before_modules = os.getcwd(), dict(os.environ), set(sys.modules)
    os.chdir(project_dir)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        yield str(target)
    finally:
        os.chdir(before_cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(before_env)
        _forget_program_modules(entry.parent.resolve(), before_modules)


def _forget_program_modules(directory: Path, keep: set[str]) -> None:
    for name in [name for name in sys.modules if name not in keep]:
        file = getattr(sys.modules[name], "__file__", None)
        if file and Path(file).resolve().is_relative_to(directory):
            del sys.modules[name]
