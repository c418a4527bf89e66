"""Worker preload for the tests: ``dask worker ... --preload urst_dask.testing.preload``.

Registers the toy networks (``identity``, ``identity-fails``, ``identity-slow``) in the
worker process, as ``tests/conftest.py`` does in the test process.  The worker needs the
``tests`` folder on ``PYTHONPATH`` (``tests/test_distributed.py`` sets it), so that this
module and the toy modules it names import by name.  The built-in networks need no preload.
"""

from __future__ import annotations

from urst_dask.testing import slow as toy_slow
from urst_dask.testing import toys as toy_models

toy_models.register()
toy_slow.register()


def dask_setup(worker) -> None:  # noqa: ARG001 - the preload interface; registration happened at import
    pass
