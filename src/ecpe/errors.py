"""The errors ecpe raises on purpose: a value, file, setting or missing package the user can act on.

Every such error derives from :class:`ECPEError`; the command line prints its message as one line (``ecpe
COMMAND: error: ...``) and exits 2. Anything else that escapes is a bug and keeps its traceback. The classes
also derive from the built-in type the Python API raised before (``ValueError`` for a bad value or file,
``RuntimeError`` for a missing package), so ``except ValueError`` in callers keeps working.
"""
from __future__ import annotations

__all__ = ["ECPEError", "UsageError", "MissingExtra"]


class ECPEError(Exception):
    """An error whose message says what to change; shown to a user as one line, without a traceback."""


class UsageError(ECPEError, ValueError):
    """A value, file or setting that ecpe cannot use; the message names it and why."""


class MissingExtra(ECPEError, RuntimeError):
    """An optional package is not installed; the message names the extra that installs it."""
