"""``identity-slow``: the toy identity network with slow, counted windows.

Each window of the tile stage sleeps ``URST_TOY_DELAY`` seconds (read at call time, default
0.25) before running the plain identity, so a run on a small image lasts long enough to kill
a worker in the middle of it.  The thumbnail pass is not slowed down, and the output is the
identity's: the input itself, exactly.  :func:`windows_done` counts the windows this process
finished (``client.run(toy_slow.windows_done)`` reads it on every worker), whatever names the
graph optimizer gives the fused window tasks.
"""

from __future__ import annotations

import os
import threading
import time

from torch import Tensor

from urst_dask.models import ModelInfo, Network, register_method
from urst_dask.stats import FrozenSource, StatsSource, StyleCode

from .toys import Identity

NAME = "identity-slow"
_lock = threading.Lock()
_done = 0


def windows_done() -> int:
    """Windows of the tile stage this process has finished."""
    return _done


def delay() -> float:
    return float(os.environ.get("URST_TOY_DELAY", "0.25"))


class SlowIdentity(Identity):
    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        if not isinstance(source, FrozenSource):  # the thumbnail pass
            return super().run(x, style, source, alpha)
        time.sleep(delay())
        y = super().run(x, style, source, alpha)
        global _done
        with _lock:
            _done += 1
        return y


def build(state_dicts: dict, variant: str | None = None) -> SlowIdentity:
    return SlowIdentity().freeze()


def register() -> None:
    register_method(Network(ModelInfo(NAME, 1, 1, True, True), "test: identity with slow windows", build))
