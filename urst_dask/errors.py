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


def require_path(arg: str, value: object, optional: bool = False) -> None:
    """Refuse ``value`` unless it is a path (``str`` or ``os.PathLike``; ``None`` too when
    ``optional``), naming ``arg``: pathlib's own TypeError names neither."""
    import os

    if not (isinstance(value, (str, os.PathLike)) or (optional and value is None)):
        raise ParameterTypeError(f"{arg}={value!r}: expected a path (str or os.PathLike)"
                                 + (" or None" if optional else ""))


def require_bool(arg: str, value: object) -> None:
    """Refuse anything but ``True``/``False`` (``"no"`` is truthy)."""
    if not isinstance(value, bool):
        raise ParameterTypeError(f"{arg}={value!r}: must be a bool")


def as_int(arg: str, value: object) -> int:
    """``value`` as an ``int``: any integer (NumPy's too) or a float with an integral value;
    a bool, NaN or anything else is refused naming ``arg``."""
    import math
    import numbers

    if not isinstance(value, bool) and isinstance(value, numbers.Integral):
        return int(value)
    try:
        if not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(float(value)) \
                and float(value).is_integer():
            return int(float(value))
    except OverflowError:  # a Fraction beyond float's range
        pass
    raise ParameterTypeError(f"{arg}={value!r}: must be an integer")


def as_number(arg: str, value: object) -> float:
    """``value`` as a ``float``: any real number (NumPy's too) but a bool."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"{arg}={value!r}: must be a number")
    try:
        return float(value)
    except OverflowError:
        raise ParameterError(f"{arg}={value!r}: too large") from None
