"""Check the contents of the built sdist and wheel in dist/ (run by .ci/dist-check after `make dist`).

The wheel holds the package and its metadata only (no tests, examples or benchmarks), including the data
files the package reads at run time; the sdist holds every tracked file its own test suite needs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

PACKAGE = "enos_pulumi"
# Read at run time, or stored by module path in users' stack state: a wheel without them is broken.
WHEEL_MUST_HOLD = [
    f"{PACKAGE}/__init__.py",
    f"{PACKAGE}/provider.py",
    f"{PACKAGE}/plugin/__init__.py",
    f"{PACKAGE}/py.typed",
    f"{PACKAGE}/simulator/demo_seed.yaml",
]
# Tracked files that must be in the sdist for its tests to run (and the wheel to be built from it).
SDIST_TREES = (f"{PACKAGE}/", "tests/", "examples/")
SDIST_FILES = ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "MANIFEST.in", "Makefile")
#: Commands the wheel installs (`pulumi-resource-enos` is how the Pulumi CLI finds the plugin on PATH).
SCRIPTS = ("enos-simulator", "pulumi-resource-enos")


def one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    if len(found) != 1:
        sys.exit(f"expected one {pattern} in {dist}, found {[p.name for p in found]}: run `make dist`")
    return found[0]


def tracked_files(root: Path) -> list[str] | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 - git with fixed arguments
            [git, "ls-files", "-z"], cwd=root, capture_output=True, check=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout: nothing to compare against
    return [name for name in out.split("\0") if name]


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    dist = root / "dist"
    wheel_path = one(dist, "*.whl")
    sdist_path = one(dist, "*.tar.gz")
    problems: list[str] = []

    with zipfile.ZipFile(wheel_path) as wheel:
        names = set(wheel.namelist())
        dist_info = next(n for n in names if n.endswith(".dist-info/METADATA")).split("/")[0]
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    problems += [f"wheel lacks {name}" for name in WHEEL_MUST_HOLD if name not in names]
    if f"{dist_info}/licenses/LICENSE" not in names:
        problems.append("wheel lacks the LICENSE file")
    if "License-Expression: Apache-2.0" not in metadata.splitlines():
        problems.append("wheel metadata has no 'License-Expression: Apache-2.0'")
    problems += [
        f"wheel installs no {name} command" for name in SCRIPTS if f"\n{name} = " not in entry_points
    ]
    stray = sorted(n for n in names if not n.startswith((f"{PACKAGE}/", f"{dist_info}/")))
    problems += [f"wheel holds {name} (outside the package)" for name in stray]

    with tarfile.open(sdist_path) as sdist:
        members = [m.name for m in sdist.getmembers() if m.isfile()]
    prefix = members[0].split("/", 1)[0] + "/"
    in_sdist = {m[len(prefix) :] for m in members}
    problems += [f"sdist lacks {name}" for name in SDIST_FILES if name not in in_sdist]
    problems += [
        f"sdist lacks tests/{name}"
        for name in ("conftest.py", "__init__.py")
        if f"tests/{name}" not in in_sdist
    ]
    # Package files the sdist ships must all reach the wheel: a new subpackage or data file included.
    problems += [
        f"wheel lacks {name}, which the sdist ships"
        for name in sorted(in_sdist)
        if name.startswith(f"{PACKAGE}/") and name not in names
    ]
    tracked = tracked_files(root)
    if tracked is not None:
        problems += [
            f"sdist lacks tracked file {name}"
            for name in tracked
            if name.startswith(SDIST_TREES) and name not in in_sdist
        ]

    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dist: {wheel_path.name} and {sdist_path.name} hold what they must")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
