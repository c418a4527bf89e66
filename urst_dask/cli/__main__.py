"""``python -m urst_dask.cli``: the ``urst-dask`` command."""

from . import entry

entry()
