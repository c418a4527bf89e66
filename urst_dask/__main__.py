"""``python -m urst_dask``: the ``urst-dask`` command."""

import sys

from .cli import main

sys.exit(main())
