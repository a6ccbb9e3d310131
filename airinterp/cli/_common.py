"""What every command shares: the app, one-line errors in the CLI's words, the device check, progress."""

import os
import sys
from typing import Annotated

import typer
import typer.core


def tidy_metavars(command) -> None:
    """Plain metavars in ``--help`` (``N``, ``X``, ``PATH``, ``TEXT``, ``CHECKPOINT``) where typer
    would print ``<int range>`` or ``{checkpoint}``; metavars set by hand and choices are kept."""
    from pathlib import Path

    for p in command.params:
        if p.metavar is not None or getattr(p, "is_flag", False):
            continue
        if p.param_type_name == "argument":
            p.metavar = p.name.upper()  # typer adds the {} / [] itself
            continue
        desc = getattr(p, "type_descriptor", None)
        if desc is None or desc.is_choice:
            continue
        kind = desc.ranged_type_name if desc.is_ranged else desc.annotation
        if desc.is_list:
            from typing import get_args

            kind = (get_args(kind) or (kind,))[0]
        if desc.is_path or kind is Path:
            p.metavar = "PATH"
        elif kind in (int, "int"):
            p.metavar = "N"
        elif kind in (float, "float"):
            p.metavar = "X"
        elif kind is str:
            p.metavar = "TEXT"


class TidyGroup(typer.core.TyperGroup):
    """A command group whose commands show plain metavars (:func:`tidy_metavars`)."""

    def get_command(self, ctx, cmd_name: str):
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            tidy_metavars(cmd)
        return cmd


app = typer.Typer(
    cls=TidyGroup,
    help="Mechanistic interpretability for AIR (Asymmetric Input Recurrence) models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # usage errors as click's one 'Error: ...' line, not a wrapped box
    context_settings={"max_content_width": 100},
)


def _print_version(value: bool) -> bool:
    if value:
        from airinterp._version import __version__

        typer.echo(f"airinterp {__version__}")
        raise typer.Exit()
    return value  # typer passes the callback's value on to the command


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")] = False,
    threads: Annotated[int | None, typer.Option(min=1, metavar="N", help="torch threads for the command (default: torch's own, one per core); "
                                                "OpenMP waits passively unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set")] = None,
) -> None:  # fmt: skip
    """Options before the command: ``airinterp --threads 1 report``."""
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # read when torch loads
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)


#: the library's parameter names -> the flags that set them. Library errors name the parameter
#: (``n_act 0: ...``); the CLI shows the flag (:func:`in_flags`).
FLAGS = {
    "n_act": "--n-act", "n_puzzles": "--n-puzzles", "from_act": "--from-act", "batch_size": "--batch-size",
    "global_batch_size": "--batch-size", "init_from": "--init-from", "eval_interval": "--eval-interval",
    "task": "--task", "checkpoint": "--checkpoint", "data": "--data", "seed": "--seed", "substep": "--substep",
    "source": "--source", "update": "--update", "site": "--site", "steps": "--steps", "query": "--cell",
    "layer": "--layer", "head": "--head", "out": "--out", "epochs": "--epochs", "device": "--device", "size": "--size",
    "state": "--state", "cell": "--cell", "puzzle": "--puzzle", "violations": "--violations", "head_reduce": "--head-reduce",
    "top_k": "--top-k", "act": "--act", "noise": "--noise", "window": "--window",
    "scales": "--scales", "acts": "--acts", "targets": "--targets", "ablate_acts": "--ablate-acts", "folds": "--folds",
}  # fmt: skip


def in_flags(text: str) -> str:
    """A library message in the CLI's words (:data:`FLAGS`): names with an underscore wherever they
    stand as a word, plain words where a clause starts with them (``task 'chess': ...``,
    ``... but task is maze``)."""
    import re

    text = re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: FLAGS.get(m.group(0), m.group(0)), text)
    plain = "|".join(k for k in FLAGS if "_" not in k)
    return re.sub(rf"(^|; |\bbut |\band )({plain})\b(?=[ :])", lambda m: m.group(1) + FLAGS[m.group(2)], text)


def fail(message: "str | BaseException", every_rank_alike: bool = False) -> typer.Exit:
    """Print ``error: <one line>`` on stderr; ``raise fail(...)`` exits with status 2. An exception's
    message is put in the CLI's words (:func:`in_flags`). Under torchrun a rank other than 0 says
    which it is (``[rank 3] error: ...``), and says nothing when ``every_rank_alike`` (a failure
    every rank meets the same way, e.g. ``--device cuda`` on a CPU machine: rank 0 says it once)."""
    from airinterp.errors import one_line

    text = in_flags(one_line(message)) if isinstance(message, BaseException) else " ".join(str(message).split())
    rank = os.environ.get("RANK", "0") if "TORCHELASTIC_RUN_ID" in os.environ else "0"
    if rank == "0":
        typer.secho(f"error: {text}", fg=typer.colors.RED, err=True)
    elif not every_rank_alike:
        typer.secho(f"[rank {rank}] error: {text}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def input_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input (a file, a field, an option), reported in one line;
    ``except input_errors()`` imports them only when something was raised. A plain ValueError
    from the library is a bug, not bad input: ``main``'s last net reports it as such."""
    from pydantic import ValidationError

    from airinterp.errors import InputError

    return (InputError, ValidationError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def check_device(device: str) -> str:
    from airinterp.errors import InputError, resolve_device

    try:
        resolve_device(device, "--device")
    except InputError as err:
        raise fail(err, every_rank_alike=True) from None
    return device


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
