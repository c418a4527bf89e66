"""Registry of style networks.

Each network is one module exposing ``WEIGHTS`` (its checkpoint files) and
``build(state_dicts, variant)``.  :func:`load_model` resolves, verifies and loads the files
and returns a frozen :class:`~urst_dask.models.base.StyleModel`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

from ..errors import ParameterError
from ..io.weights import WeightFile, file_status, load_state_dict
from .base import ModelInfo, StyleModel


@dataclass(frozen=True)
class MethodEntry:
    name: str
    module: str
    summary: str
    takes_style_image: bool = True
    supports_alpha: bool = True

    def load_module(self) -> ModuleType:
        """The network's module (``module`` is an absolute module name)."""
        return importlib.import_module(self.module)

    def weights(self, variant: str | None = None) -> tuple[WeightFile, ...]:
        mod = self.load_module()
        chooser: Callable[[str | None], tuple[WeightFile, ...]] | None = getattr(mod, "weights_for", None)
        return chooser(variant) if chooser else mod.WEIGHTS


METHODS: dict[str, MethodEntry] = {
    e.name: e
    for e in (
        MethodEntry("wct16x", f"{__name__}.wct16x", "16x-compressed VGG-19 WCT (Collaborative Distillation), 5 levels"),
        MethodEntry("johnson", f"{__name__}.johnson", "Johnson et al. fast neural style, 15 IN layers; style = "
                    "candy | mosaic | pointilism | rain_princess | udnie | a .pth/.model checkpoint",
                    takes_style_image=False),
        MethodEntry("microast", f"{__name__}.microast", "MicroAST arbitrary style (AAAI 2023): TIN at its two AdaIN points"),
        MethodEntry("wct", f"{__name__}.wct", "original VGG-19 WCT (Li et al. 2017), levels K..1 (style variant K, default 3)"),
        MethodEntry("adain", f"{__name__}.adain", "AdaIN (Huang & Belongie 2017), pytorch-AdaIN checkpoints (user-supplied)"),
        MethodEntry("linearwct", f"{__name__}.linearwct", "LinearWCT (Li et al. 2019), r41 checkpoints (user-supplied)"),
        MethodEntry("msgnet", f"{__name__}.msgnet", "MSG-Net (Zhang & Dana 2017), 21styles.model (user-supplied)",
                    supports_alpha=False),
        MethodEntry("passthrough", f"{__name__}.passthrough", "no network: output = input through one TIN point "
                    "(benchmarks the pipeline's own I/O and tiling)"),
    )
}


def register_method(entry: MethodEntry) -> None:
    """Add a network (a module with ``WEIGHTS`` and ``build``) under ``entry.name``.

    Workers must be able to import ``entry.module`` and must register it too (for instance
    in a worker plugin); the built-in networks are always registered.
    """
    METHODS[entry.name] = entry


def method_entry(name: str) -> MethodEntry:
    try:
        return METHODS[name]
    except KeyError:
        raise ParameterError(f"method={name!r}: must be one of {', '.join(METHODS)}") from None


def load_model(name: str, weights_dir: Path, variant: str | None = None) -> StyleModel:
    """Load network ``name`` (and style ``variant`` for baked-in-style networks) on the CPU."""
    entry = method_entry(name)
    mod = entry.load_module()
    files = entry.weights(variant)
    dicts = {wf.relpath: load_state_dict(weights_dir, wf) for wf in files}
    return mod.build(dicts, variant)


def weights_report(weights_dir: Path) -> dict[str, dict[str, str]]:
    """``{method: {relpath: 'ok'|'missing'|'bad-hash'}}`` for every registered method."""
    out = {}
    for name, entry in METHODS.items():
        mod = entry.load_module()
        files = getattr(mod, "ALL_WEIGHTS", None) or mod.WEIGHTS
        out[name] = {wf.relpath: file_status(weights_dir, wf) for wf in files}
    return out


__all__ = ["METHODS", "MethodEntry", "register_method", "ModelInfo", "StyleModel", "load_model", "method_entry", "weights_report"]
