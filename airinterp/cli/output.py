"""Where commands write: output paths checked before any work, default directories, files written whole.

Every table, figure page and ``config.json`` a command writes goes through here, and through
:mod:`airinterp.io` below it, so a failed or killed command never leaves half a file.
"""

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from airinterp.cli._common import fail
from airinterp.io import atomic_file, atomic_write_text, staging_dir


def check_parents_writable(path: Path, option: str = "--out") -> None:
    """``path`` can be written, tried before any work: its name is UTF-8 (it goes into
    config.json) and each part fits the file system; it is no dangling symlink or symlink loop;
    the nearest existing ancestor is a directory in which a file can actually be created (a
    read-only file system passes ``os.access``)."""
    import tempfile

    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise fail(f"{option} {ascii(str(path))}: the name is not valid UTF-8") from None
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            raise fail(f"{option} {path}: the name {part[:40]}... is longer than 255 bytes")
    try:
        path.resolve(strict=False)
    except (RuntimeError, OSError) as err:  # RuntimeError: a symlink loop (Python 3.11)
        raise fail(f"{option} {path}: cannot be resolved ({err})") from None
    if path.is_symlink() and not path.exists():
        raise fail(f"{option} {path}: a symlink to {os.readlink(path)}, which does not exist")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise fail(f"{option} {path}: {parent} is a file, not a directory")
            try:
                fd, probe = tempfile.mkstemp(dir=parent, prefix=".airinterp-probe-")
            except OSError as err:
                raise fail(f"{option} {path}: {parent} is not writable ({err.strerror})") from None
            os.close(fd)
            os.unlink(probe)
            break


def check_file_out(path: Path, suffixes: tuple[str, ...], option: str = "--out") -> Path:
    """An output file: the right suffix, not a directory, its parent not a file; before any work."""
    if path.suffix not in suffixes:
        raise fail(f"{option} {path}: expected a file ending in {' or '.join(suffixes)}")
    check_parents_writable(path, option)
    if path.is_dir():
        raise fail(f"{option} {path}: is a directory; expected a file to write")
    if path.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise fail(f"{option} {path}: writing parquet needs pyarrow (pip install pyarrow), or use .csv") from None
    return path


def owner(path: Path) -> tuple[str, Path] | None:
    """What ``path`` is or lies inside, if it is not ours to write into: ``("checkpoint", dir)``
    (weights or a card), ``("training run", dir)``, ``("dataset", dir)``; None otherwise."""
    from airinterp.checkpoints.format import CHECKPOINT_FILES

    path = Path(os.path.abspath(path))
    for d in (path, *path.parents):
        try:
            if not d.is_dir():
                continue
        except OSError:  # a name the file system refuses (too long): not a directory of anything
            continue
        if (d / "config.json").is_file() and (d / "metrics.jsonl").is_file() and _is_train_config(d / "config.json"):
            return "training run", d
        if any((d / f).is_file() for f in (*CHECKPOINT_FILES, "card.json")):
            return "checkpoint", d
        if any((d / f).is_file() for f in ("airinterp_build.json", "train/dataset.json", "test/dataset.json")) or (
            (d / "dataset.json").is_file() and (d / "all__inputs.npy").is_file()  # a split directory
        ):
            return "dataset", d
    return None


def _is_train_config(path: Path) -> bool:
    """``config.json`` written by ``airinterp train`` (not any project's config.json)."""
    try:
        c = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(c, dict) and {"preset", "variant", "global_batch_size"} <= set(c)


def check_not_inside_inputs(path: Path, option: str = "--out") -> None:
    """An analysis output is not a checkpoint, training run or dataset directory, nor inside one:
    its config.json and tables would replace or mix with their files (a run's config.json: then
    ``train --resume`` is refused)."""
    found = owner(path)
    if found is not None:
        kind, d = found
        where = "is" if Path(os.path.abspath(path)) == d else f"is inside {d}, which is"
        raise fail(f"{option} {path}: {where} a {kind} directory; write the output elsewhere")


def write_table(df, path: Path) -> None:
    """A pandas table to .csv or .parquet, written beside ``path`` and renamed into place."""
    with atomic_file(path) as tmp:
        df.to_parquet(tmp) if path.suffix == ".parquet" else df.to_csv(tmp, index=False)


def out_dir(out: Path | None, command: str, checkpoint: "str | Path", suffix: str = "") -> Path:
    """``--out`` or the default ``out/<command>/<checkpoint name><suffix>``, checked writable."""
    from airinterp.checkpoints import Checkpoint

    if out is None:
        out = Path("out") / command / (Checkpoint(checkpoint).name + suffix)
    check_not_inside_inputs(out)
    return check_dir_out(out)


def check_dir_out(path: Path, option: str = "--out") -> Path:
    """An output directory: not a file, its nearest existing ancestor writable; before any work."""
    check_parents_writable(path, option)
    if path.exists() and not path.is_dir():
        raise fail(f"{option} {path}: is a file; expected a directory")
    return path


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A hidden sibling directory to write into; its files move into ``out`` when all are written."""
    with staging_dir(out, merge=True) as d:
        yield d


def write_config(d: Path, config: dict) -> None:
    """``config.json``: what produced the directory's files."""
    atomic_write_text(d / "config.json", json.dumps(config, indent=2) + "\n")


def write_html(path: "str | Path", title: str, figures: Sequence, notes: Sequence[str] = ()) -> Path:
    """One self-contained HTML page of plotly figures: plotly.js inlined once, no CDN, opens offline."""
    from airinterp.report.html import Document

    doc = Document(title)
    for n in notes:
        doc.para(n)
    for fig in figures:
        doc.figure(fig)
    return doc.write(path)


def shown(path) -> str:
    """A path as outputs show it: relative to the source checkout when inside it
    (:func:`airinterp.checkpoints.paths.shown`; imported here lazily, --help stays light)."""
    from airinterp.checkpoints.paths import shown as _shown

    return _shown(path)


def said(path) -> str:
    """A path in a terminal message: relative to the working directory when inside it, else
    absolute (never relative to somewhere else: a same-named folder here must not be implied)."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)
