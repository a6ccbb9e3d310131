"""airinterp: mechanistic interpretability for AIR (Asymmetric Input Recurrence)."""

from airinterp._version import __version__


def load(path, *, device=None, dtype=None, allow_unverified: bool = False):
    """Load an airinterp checkpoint (``.safetensors`` with the config in its metadata;
    :func:`airinterp.checkpoints.format.load`)."""
    from airinterp.checkpoints import load as _load

    return _load(path, device=device, dtype=dtype, allow_unverified=allow_unverified)


def __getattr__(name: str):
    if name == "read_only":  # lazily: importing airinterp stays light
        from airinterp.model.hooks import read_only

        return read_only
    raise AttributeError(f"module 'airinterp' has no attribute {name!r}")


__all__ = ["__version__", "load", "read_only"]
