"""Exception types raised at the public boundary.

Every error a user can cause is a subclass of :class:`UrstError` and also of the
matching builtin (``ValueError``, ``TypeError``, ``FileNotFoundError``), so callers
can catch either.  Messages name the argument (or file) and the offending value.
The CLI turns any :class:`UrstError` into one line on stderr and exit status 2.
"""

from __future__ import annotations


class UrstError(Exception):
    """Base class of every user-facing error raised by urst-dask."""


class ParameterError(UrstError, ValueError):
    """A setting has a bad value (for example ``margin >= stride / 2``)."""


class ParameterTypeError(UrstError, TypeError):
    """A setting has the wrong type."""


class InputImageError(UrstError, ValueError):
    """An input image is missing, unreadable, or has an unsupported shape/dtype."""


class OutputError(UrstError, ValueError):
    """The output location cannot be used (exists, not writable, incomplete...)."""


class SchedulerError(UrstError, ConnectionError):
    """The Dask scheduler given cannot be reached, or does not answer as a Dask scheduler."""


class WeightsError(UrstError, FileNotFoundError):
    """Weights are missing, or do not match their recorded sha256."""


def bad_value(arg: str, value: object, why: str) -> ParameterError:
    """Build the standard one-line message ``arg=value: why``."""
    return ParameterError(f"{arg}={value!r}: {why}")
