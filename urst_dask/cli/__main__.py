"""``python -m urst_dask.cli``: the ``urst-dask`` command."""

import sys

from . import main

sys.exit(main())
