"""The ``urst_dask`` logger: status lines and warnings of the library go through it.

A library caller configures logging as usual.  Unconfigured, Python's last-resort handler
shows warnings on stderr (a Dask worker's log, for instance) and drops status lines; the
command line calls :func:`configure` once: status lines as ``[urst-dask] ...`` on stderr,
``-q`` keeps warnings and errors only, ``-v`` adds debug detail.
"""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("urst_dask")


def configure(*, verbose: bool = False, quiet: bool = False) -> None:
    """Send the ``urst_dask`` logger to stderr for the command line (idempotent)."""
    for handler in list(LOGGER.handlers):
        if getattr(handler, "_urst_cli", False):
            LOGGER.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[urst-dask] %(message)s"))
    handler._urst_cli = True  # type: ignore[attr-defined]
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    LOGGER.propagate = False
