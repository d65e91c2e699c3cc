"""What ``pip install .`` puts into site-packages: one import name, ``epic``, with every room.

The rooms stay at the top of the repository and install under ``epic`` through pyproject's
package-dir mapping, so a module or folder added without a line in pyproject would be
missing from a real install while the editable one (and every other test) still finds it.
The wheel is built from a copy of the sources, never in the checkout, so that files left in
a ``build/`` folder by an earlier build cannot hide a missing one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOMS = ("shared", "edge", "central", "broker", "lab")
# Files beside the code that the services read at run time.
DATA = ("central/static/index.html", "central/static/app.js", "broker/mosquitto/mosquitto.conf")

pytestmark = pytest.mark.slow


def _sources() -> list[Path]:
    """Every file of the package as the checkout holds it (relative to the repository)."""
    found = []
    for top in ("epic", *ROOMS):
        for path in (REPO / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.append(path.relative_to(REPO))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for rel in _sources():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, src / rel)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_adds_one_import_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"epic"}


def test_every_module_and_data_file_of_every_room_is_in_the_wheel(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"epic/{rel}" if rel.parts[0] != "epic" else str(rel) for rel in _sources()}
    wanted = {w for w in wanted if w.endswith(".py")} | {f"epic/{d}" for d in DATA}
    missing = sorted(wanted - names)
    assert not missing, f"not in the wheel (add the package to pyproject): {missing}"


def test_the_installed_package_imports_without_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    modules = sorted(
        ".".join(p.relative_to(site).with_suffix("").parts).removesuffix(".__init__")
        for p in (site / "epic").rglob("*.py")
        if p.name != "__main__.py"
    )
    # Run from an empty folder with the extracted wheel first on the path: an import that
    # only works from the checkout (a room's bare name, a file outside the package) fails.
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(site)!r}), (name, module.__file__)\n"
        "print(len(sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-P", "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
