"""The ``airinterp`` command line. Thin: parse options, check them, call the library, print tables.

One module per command group (:mod:`.model_cmds`, :mod:`.data_cmds`, :mod:`.train_cmds`,
:mod:`.analysis_cmds`, :mod:`.beyond_cmds`) on the
shared app of :mod:`._common`. Heavy imports (torch, transformer_lens) live inside the commands so
``--help`` stays fast. Bad input ends in one ``error: ...`` line and exit status 2, before any work.
"""

from airinterp.cli import analysis_cmds, beyond_cmds, data_cmds, model_cmds, report_cmds, train_cmds  # noqa: F401  (register the commands)
from airinterp.cli._common import app, main

__all__ = ["app", "main"]
