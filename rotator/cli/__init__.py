"""``jfrog-rotator``: the command line. Every command maps to one library call.

Exit codes: 0 ok; 1 a remote call failed; 2 bad usage, bad config or bad input. Expected errors
print one line on stderr (``HH:MM:SS [Error] <message>`` like the JFrog CLI) and no traceback;
``--debug`` adds one (scrubbed of secrets).

:func:`main` (the console script and ``python -m rotator``) and :func:`run` are in :mod:`.main`;
the commands are in the ``*_commands`` modules, the exit-code mapping in :mod:`.errors`.
"""

from rotator.cli.main import main, run

__all__ = ["main", "run"]
