"""The installed package (what the images ship) carries every file the product reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.factories import ROOT

PACKAGES = ("core", "webapp", "tasks")


def source_files() -> list[str]:
    """The repository's files that git tracks or would track (not ignored ones)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line and (ROOT / line).is_file()]


@pytest.mark.slow
def test_the_wheel_carries_every_source_file_of_the_packages(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the source files are unknown")
    files = source_files()
    tree = tmp_path / "source"  # built from a copy: the build writes next to its sources
    for name in files:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tree / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, "-w", str(tmp_path / "dist"), str(tree)],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {name for name in files if name.split("/")[0] in PACKAGES}
    assert sorted(expected - shipped) == []
