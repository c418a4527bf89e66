"""One run configuration, :class:`RunConfig`: built once, frozen, validated, carrying parsed
values (enums, the :class:`~urst_dask.settings.Intensity`...).

It holds the network (``method``, ``variant``, ``weights``) and one frozen group per concern:
``style`` (:class:`~urst_dask.settings.StyleOptions`), ``tiles``
(:class:`~urst_dask.tiling.TilePlan`), ``compute`` (:class:`~urst_dask.settings.ComputeOptions`),
``cluster`` (:class:`~urst_dask.settings.ClusterOptions`) and ``flags`` (:class:`RunFlags`: the
input and run switches).  :meth:`RunConfig.from_kwargs` is the one place where flat keyword
names (``alpha=``, ``stride=``...) are sorted into the groups; the command line builds its
arguments from the same dataclass fields (:mod:`urst_dask.cli.options`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ParameterError, ParameterTypeError, require_bool, require_path
from ..settings import BAKED_STYLE_METHODS, BUILTIN_METHODS, BUILTIN_VARIANTS, ClusterOptions, ComputeOptions, StyleOptions
from ..tiling import TilePlan


@dataclass(frozen=True)
class RunFlags:
    """How the input is read and how the run behaves (not part of its fingerprint).

    ``axes``: the source axes when they cannot be detected; ``allow_large_images``: lift
    Pillow's decompression-bomb limit; ``scratch``: where decoded PNG/JPEG copies go;
    ``storage_options``: fsspec options for URLs (one dict, or one per scheme);
    ``overwrite``: replace a store of another run; ``progress``: status lines and the bar.
    """

    axes: str | None = field(default=None, metadata={
        "help": "source axes when they cannot be detected, e.g. CYX, YXC, TCZYX (T, Z singleton)"})
    allow_large_images: bool = field(default=False, metadata={
        "help": "lift Pillow's decompression-bomb limit for PNG/JPEG inputs"})
    scratch: str | os.PathLike[str] | None = field(default=None, metadata={
        "help": "folder for decoded copies of PNG/JPEG inputs (default: $URST_DASK_SCRATCH, else <out>.scratch); "
                "removed at the end, or by the next run if killed"})
    storage_options: dict[str, Any] | None = field(default=None, metadata={"help": "", "cli": False})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing output store"})
    progress: bool = field(default=False, metadata={"help": "", "cli": False})  # the CLI's --no-progress / -q

    def __post_init__(self) -> None:
        for name in ("allow_large_images", "overwrite", "progress"):
            require_bool(name, getattr(self, name))
        require_path("scratch", self.scratch, optional=True)
        if self.axes is not None and not isinstance(self.axes, str):
            raise ParameterTypeError(f"axes={self.axes!r}: must be a string of axis letters, e.g. 'CYX'")
        if self.storage_options is not None and not isinstance(self.storage_options, dict):  # as io.remote words it
            raise ParameterError(f"storage_options={self.storage_options!r}: expected a JSON object (a dict with "
                                 "string keys)")

    def __hash__(self) -> int:  # storage_options is a dict: hash the rest
        return hash((self.axes, self.allow_large_images, str(self.scratch), self.overwrite, self.progress))


GROUPS: dict[str, type] = {"style": StyleOptions, "tiles": TilePlan, "compute": ComputeOptions,
                           "cluster": ClusterOptions, "flags": RunFlags}
TOP = ("method", "variant", "weights")


def _check_builtin_variant(method: str, variant: str) -> None:
    """A built-in network's variant, checked when a config is made (the networks' own check,
    at the run's start, needs torch)."""
    valid = BUILTIN_VARIANTS.get(method)
    if method in BAKED_STYLE_METHODS:
        raise ParameterError(f"variant={variant!r}: {method} takes its variant from the style argument")
    if valid is None:
        raise ParameterError(f"variant={variant!r}: {method} has no variants; leave it out")
    if variant.strip() not in valid and variant != "":
        raise ParameterError(f"variant={variant!r}: {method}'s variants are {', '.join(valid)}")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run is configured by, frozen (see the module docstring)."""

    method: str = field(default="wct16x", metadata={"help": "style network (see `urst-dask methods`)"})
    variant: str | None = field(default=None, metadata={
        "help": "network variant where a method has several (wct: top level 1-5, default 3)"})
    weights: str | os.PathLike[str] | None = field(default=None, metadata={
        "help": "weights folder (default: $URST_DASK_WEIGHTS, then the user cache)"})
    style: StyleOptions = field(default_factory=StyleOptions)
    tiles: TilePlan = field(default_factory=TilePlan)
    compute: ComputeOptions = field(default_factory=ComputeOptions)
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    flags: RunFlags = field(default_factory=RunFlags)

    def __post_init__(self) -> None:
        if not isinstance(self.method, str):
            raise ParameterTypeError(f"method={self.method!r}: must be a method name (see `urst-dask methods`)")
        if self.method not in BUILTIN_METHODS:  # a registered network or an entry point; a typo lists the names
            from ..models import method_entry

            method_entry(self.method)
        if self.variant is not None and not isinstance(self.variant, str):
            object.__setattr__(self, "variant", str(self.variant))
        if self.method in BUILTIN_METHODS and self.variant is not None:
            _check_builtin_variant(self.method, self.variant)
        require_path("weights", self.weights, optional=True)
        for name, cls in GROUPS.items():
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise ParameterTypeError(f"{name}: expected {cls.__name__}, got {type(value).__name__}")
        if self.compute.whole:  # one window: nothing to overlap or blend; the run recorded them as used
            plain = TilePlan(stride=self.tiles.stride)
            unused = [f"{k}={getattr(self.tiles, k)!r}" for k in ("margin", "blend", "align")
                      if getattr(self.tiles, k) != getattr(plain, k)]
            if unused:
                raise ParameterError(f"whole=True runs the image as one window, with no tiles to overlap or blend: "
                                     f"drop {', '.join(unused)} (or --paper)")

    @classmethod
    def from_kwargs(cls, base: RunConfig | None = None, caller: str = "RunConfig.from_kwargs()", /,
                    **kwargs: Any) -> RunConfig:
        """``base`` (default: the defaults) with flat settings (``alpha=0.5, stride=500``...)
        routed to their groups, or whole groups by name (``tiles=TilePlan.paper()``, applied
        before the flat settings).  An unknown name is refused with the list of valid ones,
        naming ``caller`` (the public function the settings were given to)."""
        if base is not None and not isinstance(base, RunConfig):
            raise ParameterTypeError(f"config={base!r}: expected a RunConfig (or flat settings as keywords)")
        base = base if base is not None else cls()
        names = setting_names()
        groups: dict[str, Any] = {}
        routed: dict[str, dict[str, Any]] = {name: {} for name in GROUPS}
        top: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in GROUPS and isinstance(value, GROUPS[key]):
                groups[key] = value
            elif key in TOP:
                top[key] = value
            elif key in names:
                routed[names[key]][key] = value
            else:
                valid = ", ".join(sorted([*names, *TOP]))
                raise ParameterTypeError(f"{caller} got an unknown setting {key!r}; valid: {valid}")
        changes: dict[str, Any] = dict(top)
        for name in GROUPS:
            group = groups.get(name, getattr(base, name))
            changes[name] = dataclasses.replace(group, **routed[name]) if routed[name] else group
        return dataclasses.replace(base, **changes)

    def replace(self, **kwargs: Any) -> RunConfig:
        """This configuration with flat settings changed (see :meth:`from_kwargs`)."""
        return RunConfig.from_kwargs(self, "RunConfig.replace()", **kwargs) if kwargs else self


def setting_names() -> dict[str, str]:
    """``{flat setting name: its group's name}`` over every group."""
    return {f.name: name for name, group in GROUPS.items() for f in dataclasses.fields(group)}
