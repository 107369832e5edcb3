"""The built wheel holds every subpackage under `trainwatch.` (the API, api/, is `trainwatch`
itself) and nothing importable as top-level api/cli/diagnostics.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile

from conftest import ROOT

# The source folders and the names they install under.
TOPS = (("api", "trainwatch"), ("cli", "trainwatch.cli"), ("diagnostics", "trainwatch.diagnostics"))


def _installed_folders() -> set[str]:
    """Every folder under api/, cli/ and diagnostics/ with an __init__.py, or with data files only
    (the knowledge base's signatures/ and phrases/), as the dotted name it installs under.
    """
    names = set()
    for top, installed in TOPS:
        for folder in (ROOT / top, *(ROOT / top).rglob("*")):
            if not folder.is_dir() or folder.name == "__pycache__":
                continue
            if (folder / "__init__.py").exists() or any(folder.glob("*.toml")):
                rel = folder.relative_to(ROOT / top)
                names.add(".".join([installed, *rel.parts]))
    return names


def test_pyproject_lists_every_subpackage():
    # a folder left out is left out of the wheel; a data folder left out also makes setuptools warn
    # on every install
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(config["tool"]["setuptools"]["packages"]) == _installed_folders()


def test_runtime_dependencies_are_only_the_four():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = {
        dep.split(">")[0].split("<")[0].split("=")[0].strip()
        for dep in config["project"]["dependencies"]
    }
    assert names == {"typer", "rich", "psutil", "nvidia-ml-py"}


def test_wheel_holds_every_subpackage_and_no_top_level_cli_or_diagnostics(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # setuptools warns of a folder under a package that `packages` does not list
    assert b"absent from setuptools' `packages` configuration" not in built.stdout + built.stderr
    wheel = next(tmp_path.glob("trainwatch_cli-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for top, installed in TOPS:
        for path in (ROOT / top).rglob("*"):
            if path.suffix in (".py", ".toml", ".json") and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT / top).as_posix()
                assert f"{installed.replace('.', '/')}/{rel}" in names, rel
    assert "trainwatch/diagnostics/watch/probe/sitecustomize.py" in names
    assert "trainwatch/demo/train_cnn.py" in names  # `trainwatch demo` needs no source tree
    for data in ("signatures/pytorch.toml", "phrases/memory.toml", "quiet.toml", "signals.toml"):
        assert f"trainwatch/diagnostics/knowledge/{data}" in names, data
    tops = {n.split("/")[0] for n in names}
    assert "cli" not in tops and "diagnostics" not in tops and "api" not in tops
    assert "trainwatch/__init__.py" in names  # the API is the package itself
    assert "trainwatch/watching.py" in names and "trainwatch/integrations/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "trainwatch = trainwatch.cli.app:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
