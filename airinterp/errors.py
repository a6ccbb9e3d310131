"""Errors a user can act on: one line that names the file, field or option and what was expected.

Library code raises ``ValueError`` subclasses (:class:`InputError`, ``CheckpointError``) or plain
``ValueError``/``FileNotFoundError``; :func:`one_line` turns any of them, pydantic's multi-line
``ValidationError`` included, into the single line the CLI prints.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class InputError(ValueError):
    """Bad input (a file, a field, an option) detected before any work is done."""


def one_line(err: BaseException, prefix: str = "") -> str:
    """A one-line message for ``err``; pydantic validation errors list ``field: problem (got x)``."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        parts = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e.get("loc", ())) or "value"
            got = e.get("input")
            shown = f" (got {got!r:.60})" if got is not None and not isinstance(got, dict) else ""
            parts.append(f"{loc}: {e.get('msg', 'invalid')}{shown}")
        text = "; ".join(parts)
    else:
        text = str(err)
        if isinstance(err, FileNotFoundError) and err.filename and str(err.filename) not in text:
            text = f"{err.filename}: {text}"
    text = " ".join(text.split())
    return f"{prefix}{text}" if prefix else text


def resolve_device(spec: "str | torch.device | None", option: str = "device") -> "torch.device":
    """``cpu``, ``cuda`` or ``cuda:N`` checked against this machine; ``option`` names the setting."""
    import torch

    if spec is None:
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"{option} {spec!r}: unknown device; expected cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
            raise InputError(f"{option} {spec!r}: CUDA is not available on this machine (torch {torch.__version__}, {build}); use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"{option} {spec!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise InputError(f"{option} {spec!r}: airinterp runs on cpu or cuda, not {device.type}")
    return device


def unpickling_reason(err: BaseException) -> str:
    """The useful part of torch's weights-only refusal ("Unsupported global: os.system")."""
    text = " ".join(str(err).split())
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    return text.strip().rstrip(".")[:200]
