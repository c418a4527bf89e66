"""The keywords of a video run: which are :class:`VideoOptions`, which the run's
(:class:`~urst_dask.pipeline.config.RunConfig`), and which a video run refuses.

``stats_policy`` and ``in_flight`` were ``stats`` and ``window``; those names mean a store of
statistics (``stylize``) and a tile, so the old keywords are refused naming the new ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ParameterError, ParameterTypeError
from ..pipeline.config import GROUPS, TOP, RunConfig, setting_names
from .policy import VideoOptions

RENAMED = {"stats": "stats_policy", "window": "in_flight"}
FINGERPRINT_NAMES = {"stats_policy": "stats"}  # fields a run's fingerprint records under an earlier name
# run settings of still images only: a frame sequence has its own axes (T, H, W, C), decodes
# frame by frame without a scratch copy, and is read from local files
STILL_ONLY = ("axes", "scratch", "storage_options")


def split_settings(settings: dict[str, Any], video: VideoOptions | None) -> tuple[VideoOptions, dict[str, Any]]:
    """``stylize_video``'s keywords as (its :class:`VideoOptions`, the run's settings); an old
    name, an unknown name or a still-image setting is refused, naming it."""
    names = {f.name for f in dataclasses.fields(VideoOptions)}
    for old, new in RENAMED.items():
        if old in settings:
            raise ParameterTypeError(f"stylize_video() got {old}={settings[old]!r}: this setting is now {new}= "
                                     f"({old} means something else elsewhere)")
    mine = {k: v for k, v in settings.items() if k in names}
    rest = {k: v for k, v in settings.items() if k not in names}
    run = {*setting_names(), *TOP, *GROUPS}
    unknown = [k for k in rest if k not in run]
    if unknown:
        raise ParameterTypeError(f"stylize_video() got an unknown setting {unknown[0]!r}; valid: "
                                 f"{', '.join(sorted(names | run - set(GROUPS) - set(STILL_ONLY)))}")
    return (dataclasses.replace(video, **mine) if video else VideoOptions(**mine)), rest


def refuse_still_only(cfg: RunConfig) -> None:
    """Refuse the still-image settings a video run would ignore (from keywords or a config)."""
    given = [f"{n}={getattr(cfg.flags, n)!r}" for n in STILL_ONLY if getattr(cfg.flags, n) is not None]
    if given:
        raise ParameterError(f"stylize_video: {', '.join(given)} would have no effect: they are for still images "
                             "(a frame sequence is (T, H, W, C), decoded frame by frame from local files)")


def fingerprint_view(vopts: VideoOptions, leave_out: tuple[str, ...]) -> dict[str, Any]:
    """The options as a run's fingerprint records them (plain values, the names it always had)."""
    return {FINGERPRINT_NAMES.get(k, k): (v.value if hasattr(v, "value") else v)
            for k, v in dataclasses.asdict(vopts).items() if k not in leave_out}
