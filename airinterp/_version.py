"""The package version, in a module of its own so no inner module imports the package root."""

__version__ = "0.1.0"
