"""What every command shares: the app, one-line errors, device and output-path checks, progress."""

import os
import sys
from pathlib import Path

import typer

app = typer.Typer(
    help="Mechanistic interpretability for AIR (Asymmetric Input Recurrence) models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # usage errors as click's one 'Error: ...' line, not a wrapped box
)


def fail(message: "str | BaseException") -> typer.Exit:
    """Print ``error: <one line>`` on stderr; ``raise fail(...)`` exits with status 2."""
    from airinterp.errors import one_line

    text = one_line(message) if isinstance(message, BaseException) else " ".join(str(message).split())
    typer.secho(f"error: {text}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


#: exceptions that mean bad input (a file, a field, an option): reported in one line
INPUT_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def check_device(device: str) -> str:
    from airinterp.errors import InputError, resolve_device

    try:
        resolve_device(device, "--device")
    except InputError as err:
        raise fail(err) from None
    return device


def check_parents_writable(path: Path, option: str = "--out") -> None:
    """The nearest existing ancestor of ``path`` is a writable directory."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise fail(f"{option} {path}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK):
                raise fail(f"{option} {path}: {parent} is not writable")
            break


def check_file_out(path: Path, suffixes: tuple[str, ...], option: str = "--out") -> Path:
    """An output file: the right suffix, not a directory, its parent not a file; before any work."""
    if path.suffix not in suffixes:
        raise fail(f"{option} {path}: expected a file ending in {' or '.join(suffixes)}")
    if path.is_dir():
        raise fail(f"{option} {path}: is a directory; expected a file to write")
    check_parents_writable(path, option)
    if path.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise fail(f"{option} {path}: writing parquet needs pyarrow (pip install pyarrow), or use .csv") from None
    return path


def write_table(df, path: Path) -> None:
    """A pandas table to .csv or .parquet, written beside ``path`` and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        df.to_parquet(tmp) if path.suffix == ".parquet" else df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def progress_columns(info: bool = False) -> tuple:
    """description, bar, n/total, (the task's ``info`` field,) elapsed, remaining."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    extra = (TextColumn("{task.fields[info]}"),) if info else ()
    return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *extra, TimeElapsedColumn(), TimeRemainingColumn())


def progress():
    """A rich progress display and a factory of advance callbacks, one task per phase."""
    from rich.progress import Progress

    display = Progress(*progress_columns())

    def factory(name: str, total: int):
        task = display.add_task(name, total=total)
        return lambda n=1: display.advance(task, n)

    return display, factory


def main() -> None:
    """The ``airinterp`` entry point: the app, with a last net that turns an unexpected exception
    into one line (``AIRINTERP_DEBUG=1`` shows the traceback)."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as err:  # noqa: BLE001
        if os.environ.get("AIRINTERP_DEBUG"):
            raise
        from airinterp.errors import one_line

        typer.secho(f"error: unexpected {type(err).__name__}: {one_line(err)} (AIRINTERP_DEBUG=1 shows the traceback)",
                    fg=typer.colors.RED, err=True)  # fmt: skip
        sys.exit(3)
