"""Worker preload for the tests: ``dask worker ... --preload dask_preload_toys``.

Registers the toy networks (``identity``, ``identity-fails``, ``identity-slow``) in the
worker process, as ``tests/conftest.py`` does in the test process.  The worker needs the
``tests`` folder on ``PYTHONPATH`` (``tests/test_distributed.py`` sets it), so that this
module and the toy modules it names import by name.  The built-in networks need no preload.
"""

from __future__ import annotations

import toy_models
import toy_slow

toy_models.register()
toy_slow.register()


def dask_setup(worker) -> None:  # noqa: ARG001 - the preload interface; registration happened at import
    pass
