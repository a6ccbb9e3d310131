"""One pydantic Run per analysis command: the options, validated once, recorded in ``config.json``.

A command builds its Run from its options with :func:`parse` (a bad value: one ``error:`` line
naming the flag, before anything is loaded), opens its inputs with :meth:`InputsRun.open`, and
writes ``config.json`` = ``{"command", "run": run.model_dump(), provenance, what was resolved}``.
Checks that need the model (an ACT step inside the rollout, a layer of the stack) are the
library's, raised with its parameter names and shown in the CLI's words (:func:`_common.in_flags`).
"""

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from airinterp.cli._common import fail, in_flags
from airinterp.cli.options import HeadReduce, State, TaskName, Violations

R = TypeVar("R", bound=BaseModel)


def _choice(enum: type, what: str, one_of: bool = False):
    """A ``mode="before"`` validator: the value is one of ``enum``'s, or our one-line message
    (``expected zH or zL``; ``one_of``: ``expected one of sudoku, maze``)."""
    names = [e.value for e in enum]
    if one_of:
        choices = "one of " + ", ".join(names)
    else:
        choices = ", ".join(names[:-1]) + (" or " if len(names) == 2 else ", ") + names[-1] if len(names) > 1 else names[0]

    def check(cls, v: Any) -> Any:
        if v is None or isinstance(v, enum):
            return v
        if v not in names:
            raise ValueError(f"{what} {v!r}: expected {choices}")
        return enum(v)

    return check


class InputsRun(BaseModel):
    """What every analysis reads: a checkpoint, its test split, a seeded sample, the device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: TaskName | None = None
    checkpoint: Path | None = None
    data: Path | None = None
    n_puzzles: int | None = Field(default=None, ge=1)
    seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=64, ge=1)
    device: str = "cpu"
    out: Path | None = None
    n_act: int | None = Field(default=None, ge=1)

    _task = field_validator("task", mode="before")(classmethod(_choice(TaskName, "task", one_of=True)))

    def open(self, default_n: int | None = None, n_act: bool = True, sample: bool = True):
        """The checked inputs (:func:`airinterp.analysis.inputs.open_inputs`); without
        ``n_puzzles``, a seeded sample of ``default_n`` (fewer if the split is smaller; None: all).
        ``n_act=False``: the model's own ``halt_max_steps`` (commands without ``--n-act``);
        ``sample=False``: the whole split (the caller samples)."""
        from airinterp.analysis.inputs import open_inputs
        from airinterp.cli._common import check_device, input_errors

        check_device(self.device)
        n, at_most = (self.n_puzzles, False) if self.n_puzzles is not None else (default_n, True)
        if not sample:
            n = None
        try:
            inp = open_inputs(
                None if self.task is None else self.task.value, self.checkpoint, self.data, n_puzzles=n, at_most=at_most,
                seed=self.seed, device=self.device, n_act=self.n_act if n_act is True else None,
            )  # fmt: skip
        except input_errors() as err:
            raise fail(err) from None
        if self.data is None:  # say which split the card led to (it is also in config.json)
            import typer

            from airinterp.cli.output import said

            typer.echo(f"data: {said(inp.data)} (the test split the card of {said(inp.checkpoint)} names)", err=True)
        return inp


class DecodeRun(InputsRun):
    probs: bool = False
    grids: int = Field(default=3, ge=0)


class FreezeRun(InputsRun):
    state: State
    from_act: int = Field(default=0, ge=0)
    substep: int | None = Field(default=None, ge=0)

    _state = field_validator("state", mode="before")(classmethod(_choice(State, "state")))

    @model_validator(mode="after")
    def _one_window(self) -> "FreezeRun":
        if self.substep is not None and self.from_act:
            raise ValueError("from_act and substep: give one (a freeze from a step on, or of one sub-step)")
        return self


class PatchRun(InputsRun):
    states: tuple[State, ...] | None = None  # None with no site: both
    site: str | None = None
    update: str | None = None
    acts: str | None = None  # comma-separated ACT steps, checked against the rollout when it is known
    source: int | str = "other"

    @field_validator("states", mode="before")
    @classmethod
    def _states(cls, v: Any) -> Any:
        if v is None or isinstance(v, tuple):
            return v
        parts = [s.strip() for s in str(v).split(",")]
        if any(s not in ("zL", "zH") for s in parts):
            raise ValueError(f"state {v!r}: expected zL, zH or zL,zH")
        return tuple(State(s) for s in parts)

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, v: Any) -> Any:
        if v == "other" or (isinstance(v, int) and not isinstance(v, bool)):
            return v
        if isinstance(v, str) and v.isascii() and v.isdigit():  # not "²" (isdigit, but int() refuses it)
            return int(v)
        raise ValueError(f"source {v!r}: expected 'other' or an ACT step number")

    @model_validator(mode="after")
    def _state_or_site(self) -> "PatchRun":
        if self.states is not None and self.site is not None:
            raise ValueError("state and site: give one")
        if self.update is not None and self.site is not None:  # it was ignored: the site names its own update
            raise ValueError("update and site: the site names its update (e.g. H0.hook_out); give one")
        return self



class AttentionRun(InputsRun):
    batch_size: int = Field(default=16, ge=1)
    steps: str | None = None
    per_head: bool = False
    head_reduce: HeadReduce = HeadReduce.mean
    violations: Violations = Violations.pre
    first_n: bool = False

    _head_reduce = field_validator("head_reduce", mode="before")(classmethod(_choice(HeadReduce, "head_reduce")))
    _violations = field_validator("violations", mode="before")(classmethod(_choice(Violations, "violations")))


class ExampleRun(InputsRun):
    puzzle: int | None = Field(default=None, ge=0)
    cell: tuple[int, int] | None = None  # (row, column)
    layer: int = Field(default=0, ge=0)
    head: int | None = Field(default=None, ge=0)
    steps: str | None = None
    top_k: int = Field(default=5, ge=1)
    propose: int = Field(default=5, ge=0)

    @field_validator("cell", mode="before")
    @classmethod
    def _cell(cls, v: Any) -> Any:
        if v is None or isinstance(v, tuple):
            return v
        try:
            r, c = (int(x) for x in str(v).split(","))
        except ValueError:
            raise ValueError(f"cell {v!r}: expected ROW,COL like 2,5") from None
        return (r, c)


class WriteLocalityRun(InputsRun):
    act: int = Field(default=1, ge=0)
    source: str = "noise"
    noise: float = Field(default=0.1, gt=0)
    window: int | None = Field(default=None, ge=1)

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, v: Any) -> Any:
        if v not in ("noise", "other"):
            raise ValueError(f"source {v!r}: expected noise or other")
        return v


class GeometryRun(InputsRun):
    act: int = Field(default=1, ge=1)
    scales: str | None = None  # comma-separated noise sizes, checked by the library
    untrained: bool = True
    basins: bool = True


class ProbesRun(InputsRun):
    acts: str | None = None  # comma-separated ACT steps, checked by the library
    targets: str | None = None
    ablate_acts: str | None = None
    folds: int = Field(default=5, ge=2)


class ReportRun(InputsRun):
    compare: tuple[Path, ...] = ()
    n_puzzles: int = Field(default=100, ge=2)
    title: str | None = None
    tables: Path | None = None


#: Run fields whose flag is not ``--`` + the field name with dashes
_FLAG_OF = {"states": "--state"}


def parse(run: type[R], **values: Any) -> R:
    """``run(**values)``, or one ``error:`` line in the CLI's words for what is wrong."""
    try:
        return run(**values)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            if e.get("type") == "value_error":
                parts.append(str(e["ctx"]["error"]))
            else:
                field = str(e["loc"][0]) if e.get("loc") else "value"
                flag = _FLAG_OF.get(field, "--" + field.replace("_", "-"))
                parts.append(f"{flag} {e.get('input')!r}: {e.get('msg', 'invalid')}")
        raise fail(in_flags("; ".join(parts))) from None
