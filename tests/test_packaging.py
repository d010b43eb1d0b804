"""The wheel carries everything the package reads: every Python module is in a listed package,
and every other file under a package folder matches that package's data patterns."""

import subprocess
import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# read only when a new schema migration is written, never by the installed package
NOT_SHIPPED = {"adapters/migrations/script.py.mako"}


def _matches(path: Path, pattern: str) -> bool:
    """Whether setuptools' glob ``pattern`` takes ``path``: ``*`` stays within one folder."""
    parts, wanted = path.parts, pattern.split("/")
    return len(parts) == len(wanted) and all(map(fnmatch, parts, wanted))


def _tracked() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "engine", "adapters", "workflows"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [Path(p) for p in listed]


def test_every_file_the_package_reads_is_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    tool = config["tool"]["setuptools"]
    folders = {package: Path(folder) for package, folder in tool["package-dir"].items()}
    data = tool["package-data"]

    def package_of(path: Path) -> tuple[str, Path]:
        """The listed package a file lies in, by its nearest folder, and its path there."""
        best = max(
            (p for p, folder in folders.items() if path.is_relative_to(folder)),
            key=lambda p: len(folders[p].parts),
        )
        return best, path.relative_to(folders[best])

    missing_modules, missing_data = [], []
    for path in _tracked():
        top, inside = package_of(path)
        if path.suffix == ".py":
            dotted = ".".join([top, *inside.parent.parts])
            in_data = any(_matches(inside, pattern) for pattern in data.get(top, []))
            if dotted not in tool["packages"] and not in_data:
                missing_modules.append(str(path))
        elif str(path) not in NOT_SHIPPED and not any(
            _matches(inside, pattern) for pattern in data.get(top, [])
        ):
            missing_data.append(str(path))
    assert missing_modules == []
    assert missing_data == []
