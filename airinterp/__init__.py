"""airinterp: mechanistic interpretability for AIR (Asymmetric Input Recurrence).

Imported before torch, airinterp asks OpenMP to wait passively (``OMP_WAIT_POLICY=PASSIVE``) unless
the environment sets ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``: torch's idle OpenMP workers otherwise
spin, and beside any other busy process (a background training) every call runs 1.5-3x slower, 3x
beside four busy processes; the price is 1.3-1.6x on an idle machine (``benchmarks/bench_threads.py``,
README "Busy machines"; ``GOMP_SPINCOUNT=300000`` restores torch's own behaviour). Imported after
torch, the setting comes too late and is not made.
"""

import os as _os
import sys as _sys

from airinterp._version import __version__

if "torch" not in _sys.modules and "GOMP_SPINCOUNT" not in _os.environ:  # OpenMP reads it once, when torch loads it
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def load(path, *, device=None, dtype=None, allow_unverified: bool = False):
    """Load an airinterp checkpoint (``.safetensors`` with the config in its metadata;
    :func:`airinterp.checkpoints.format.load`). A relative path missing from the working directory
    is looked up in the source checkout (``"checkpoints/sudoku6_Lx_H"`` works from any folder)."""
    from airinterp.checkpoints import load as _load
    from airinterp.checkpoints.paths import locate

    return _load(locate(path), device=device, dtype=dtype, allow_unverified=allow_unverified)


def __getattr__(name: str):
    if name == "read_only":  # lazily: importing airinterp stays light
        from airinterp.model.hooks import read_only

        return read_only
    raise AttributeError(f"module 'airinterp' has no attribute {name!r}")


__all__ = ["__version__", "load", "read_only"]
