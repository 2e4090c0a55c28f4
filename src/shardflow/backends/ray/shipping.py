"""What a run ships to the Ray nodes: its working directory, packed here, bounded.

Ray packs a ``runtime_env`` ``working_dir`` itself, but it does not know which files are the
run's data: inputs, outputs and run directories went to every node on every run (a package
that grew from 1.5 to 120 MB over ten runs), and at Ray's size cap the run ended in a
110-line traceback. So shardflow packs the directory (a zip Ray uploads as it is) and leaves
out, wherever they are under it:

* every run directory (a directory holding ``run.json`` and ``journal.jsonl``), and the
  input and output its ``run.json`` names; the current run's too, wherever it lives;
* ``.git``, ``.venv``, ``venv``, ``__pycache__``, ``.shardflow``;
* what ``.gitignore`` and ``.rayignore`` files ignore (each applies below its directory);
* the patterns of ``--ray-exclude`` / ``[ray] excludes`` (``.gitignore`` syntax, relative
  to the working directory).

It says how much it ships, and refuses with one line before Ray's cap.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import pathspec

from shardflow.errors import ConfigError

_log = logging.getLogger("shardflow")

ALWAYS_EXCLUDED = (".git/", ".venv/", "venv/", "__pycache__/", ".shardflow/")
IGNORE_FILES = (".gitignore", ".rayignore")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
"""Every entry's timestamp: the same files pack to the same bytes, so Ray (which names a
package by its hash) uploads an unchanged directory once."""


def ray_package_cap() -> int:
    """Ray's limit for one uploaded package (512 MiB unless ``RAY_max_grpc_message_size``)."""
    from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE

    return int(GCS_STORAGE_MAX_SIZE)


@dataclass(frozen=True, slots=True)
class Package:
    """A packed working directory: ``path`` is the zip handed to Ray as ``working_dir``."""

    root: Path
    path: Path
    files: int
    file_bytes: int
    packed_bytes: int

    def describe(self) -> str:
        return (f"shipping {self.root} to the Ray nodes: {self.files} files, "
                f"{_mib(self.file_bytes)} ({_mib(self.packed_bytes)} packed; run directories, "
                "inputs, outputs, .venv and what .gitignore ignores left out)")


def run_data(run_dir: Path) -> list[Path]:
    """The run directory itself and the input and output its ``run.json`` names."""
    found = [run_dir]
    try:
        record = orjson.loads((run_dir / "run.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return found
    source = record.get("input", {}).get("path") if isinstance(record, dict) else None
    output = record.get("output") if isinstance(record, dict) else None
    found.extend(Path(p) for p in (source, output) if isinstance(p, str))
    return found


def is_run_dir(path: Path) -> bool:
    return (path / "run.json").is_file() and (path / "journal.jsonl").exists()


def pack(root: Path, *, excludes: Sequence[str] = (), skip: Iterable[Path] = (),
         cap: int | None = None, into: Path | None = None) -> Package:
    """Pack ``root`` (without the excluded paths, above) into a zip in ``into`` (a new
    temporary directory by default); ``skip`` are further paths left out (the current run's
    directory, input and output). Raises :class:`ConfigError` once the zip reaches ``cap``."""
    root = root.resolve()
    if not root.is_dir():
        raise ConfigError("ray.working_dir", f"{root} is not a directory")
    cap = ray_package_cap() if cap is None else cap
    skipped = {p.resolve() for p in skip}
    user = pathspec.GitIgnoreSpec.from_lines(list(excludes))
    target = (into or Path(tempfile.mkdtemp(prefix="shardflow-ship-"))) / "working_dir.zip"
    files = file_bytes = 0
    largest: list[tuple[int, str]] = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in _walk(root, user, skipped):
            stat = path.stat()
            size = stat.st_size
            info = zipfile.ZipInfo(name, _ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.st_mode & 0o7777) << 16
            with path.open("rb") as src, archive.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            files += 1
            file_bytes += size
            largest = sorted([*largest, (size, name)], reverse=True)[:3]
            if archive.fp is not None and archive.fp.tell() >= cap:
                shown = ", ".join(f"{n} ({_mib(s)})" for s, n in largest)
                raise ConfigError("ray.working_dir", (
                    f"{root} packs to over {_mib(cap)}, Ray's limit for a working directory "
                    f"(largest files: {shown}); leave files out with --ray-exclude PATTERN, "
                    "[ray] excludes or .gitignore, or ship a smaller --ray-working-dir"))
    return Package(root, target, files, file_bytes, target.stat().st_size)


def _walk(root: Path, user: pathspec.GitIgnoreSpec, skipped: set[Path]) -> Iterator[tuple[Path, str]]:
    """Files under ``root`` not excluded, as (path, name in the zip), in a stable order."""
    always = pathspec.GitIgnoreSpec.from_lines(list(ALWAYS_EXCLUDED))
    ignores: list[tuple[str, pathspec.GitIgnoreSpec]] = []  # (directory prefix, its ignore files)

    def excluded(rel: str, is_dir: bool) -> bool:
        probe = rel + "/" if is_dir else rel
        if always.match_file(probe) or user.match_file(probe):
            return True
        return any(probe.startswith(prefix) and spec.match_file(probe[len(prefix):])
                   for prefix, spec in ignores)

    def visit(directory: Path, rel_dir: str) -> Iterator[tuple[Path, str]]:
        pushed = 0
        for name in IGNORE_FILES:
            file = directory / name
            if file.is_file():
                ignores.append((rel_dir, pathspec.GitIgnoreSpec.from_lines(
                    file.read_text(errors="replace").splitlines())))
                pushed += 1
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            path = Path(entry.path)
            rel = rel_dir + entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if excluded(rel, is_dir) or path.resolve() in skipped:
                continue
            if is_dir:
                yield from visit(path, rel + "/")
            elif entry.is_file():
                yield path, rel
        del ignores[len(ignores) - pushed:]

    # run directories first: the inputs and outputs they name are left out wherever they are
    for run_dir in _run_dirs(root, always):
        skipped.update(p.resolve() for p in run_data(run_dir))
    yield from visit(root, "")


def _run_dirs(root: Path, always: pathspec.GitIgnoreSpec) -> Iterator[Path]:
    """Run directories under ``root`` (``.shardflow/runs/*`` included, though never shipped)."""
    runs = root / ".shardflow" / "runs"
    if runs.is_dir():
        yield from (p for p in runs.iterdir() if p.is_dir() and is_run_dir(p))
    for directory, subdirs, _ in os.walk(root):
        rel = os.path.relpath(directory, root)
        subdirs[:] = [d for d in subdirs if not always.match_file(
            (d if rel == "." else f"{rel}/{d}") + "/")]
        if is_run_dir(Path(directory)):
            subdirs[:] = []
            yield Path(directory)


def rebase_target(target: str, working_dir: Path) -> str:
    """A ``file.py:attr`` target as the actors spell it, their current directory being the
    shipped copy of ``working_dir``: relative to it when the file is inside, else absolute."""
    path, _, attr = target.rpartition(":")
    absolute = Path(path).resolve()
    try:
        return f"{absolute.relative_to(working_dir.resolve()).as_posix()}:{attr}"
    except ValueError:
        return f"{absolute}:{attr}"


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"
