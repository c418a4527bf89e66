"""``identity-fails``: the toy identity network that fails in the tile stage."""

from toy_models import WEIGHTS, FailsInTiles  # noqa: F401


def build(state_dicts: dict, variant: str | None = None):
    return FailsInTiles().freeze()
