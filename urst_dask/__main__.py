"""``python -m urst_dask``: the ``urst-dask`` command."""

from .cli import entry

entry()
