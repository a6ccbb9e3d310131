"""Writing to disk whole or not at all: the one "write beside, then rename" of the package.

Every file and directory airinterp writes (checkpoints, shards and their index, datasets, training
checkpoints, tables, figure pages, reports, the GPU job's record) goes through these two context
managers, so a kill or an error never leaves half a file where a reader looks:

- :func:`atomic_file` yields a hidden sibling path to write; on success it is renamed onto the
  target (``os.replace``, atomic on one file system) with the mode the umask gives new files;
  on an error it is removed and the target is untouched.
- :func:`staging_dir` yields a hidden sibling directory; on success its files are moved into the
  target (``merge``) or it replaces the target whole (the old one set aside first, removed last).
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_file", "atomic_write_text", "staging_dir"]


def _umask_mode(path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextmanager
def atomic_file(path: "str | Path") -> Iterator[Path]:
    """``with atomic_file(p) as tmp: write(tmp)``: ``p`` appears complete or not at all.

    The parent directory is created; ``tmp`` is ``.{name}.{pid}.tmp`` beside ``p`` (same file
    system, so the rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        _umask_mode(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: "str | Path", text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_file`; returns ``path``."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextmanager
def staging_dir(path: "str | Path", *, merge: bool = False, aside: "Path | None" = None) -> Iterator[Path]:
    """``with staging_dir(d) as tmp: fill(tmp)``: the directory ``d`` is written whole.

    ``merge=False``: ``tmp`` replaces ``d`` (an existing ``d`` is renamed to ``aside``, default
    a hidden sibling, before ``tmp`` takes its place, and removed after: a reader finds the old or
    the new directory, never a mixture). ``merge=True``: each file of ``tmp`` is moved into ``d``
    (created if needed), other files of ``d`` stay. On an error nothing of ``tmp`` is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = aside if aside is not None else path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if merge:
            path.mkdir(parents=True, exist_ok=True)
            for f in sorted(tmp.iterdir()):
                os.replace(f, path / f.name)
        else:
            if path.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
