"""Random weights in the official checkpoint layouts, for networks whose files are absent.

AdaIN, LinearWCT and MSG-Net have no public files with a recorded hash, so none may be in
the weights folder.  For memory and speed the values of the weights do not matter, only the
architecture: these networks then run with random weights (``torch.manual_seed(0)``,
PyTorch's default initialisation) saved under the official file names and key layouts,
which are taken from the registry's own builders (the modules the ``build`` functions load
strictly), and loaded through the ordinary verified path.  Every row measured so is labelled
``random``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from ..errors import WeightsError
from ..io.weights import file_status
from ..models import load_model, method_entry

StateDicts = dict[str, dict[str, Tensor]]
PRETRAINED = "pretrained"
RANDOM = "random"
NONE = "none"  # a method without weights (passthrough)


def _adain() -> StateDicts:
    from ..models import adain

    return {"adain/vgg_normalised.pth": adain.full_vgg().state_dict(),
            "adain/decoder.pth": adain.AdaIN().decoder.state_dict()}


def _linearwct() -> StateDicts:
    from ..models import linearwct

    m = linearwct.LinearWct()
    return {"linearwct/vgg_r41.pth": m.encoder.state_dict(), "linearwct/dec_r41.pth": m.decoder.state_dict(),
            "linearwct/r41.pth": m.matrix.state_dict()}


def _msgnet() -> StateDicts:
    """The 21styles.model layout: instance norms without affine parameters but with the old
    PyTorch running statistics (the affine model gives each norm's channel count)."""
    from ..models import msgnet

    model = msgnet.MsgNet(affine=True)
    sd = model.state_dict()
    for name, mod in model.named_modules(remove_duplicate=False):  # model1 is shared: both names
        if isinstance(mod, msgnet.InstanceNormPoint):
            if f"{name}.weight" not in sd:
                continue
            c = sd.pop(f"{name}.weight").numel()
            sd.pop(f"{name}.bias")
            sd[f"{name}.running_mean"], sd[f"{name}.running_var"] = torch.zeros(c), torch.ones(c)
    return {"msgnet/21styles.model": sd}


OFFICIAL: dict[str, Callable[[], StateDicts]] = {"adain": _adain, "linearwct": _linearwct, "msgnet": _msgnet}


def has_weights(method: str, weights_dir: Path, variant: str | None = None) -> bool:
    """Whether every file ``method`` needs is in ``weights_dir`` (verified where a hash is known)."""
    return all(file_status(weights_dir, wf) in ("ok", "unverified") for wf in method_entry(method).weights(variant))


def write_random(method: str, folder: Path) -> Path:
    """Write random weights for ``method`` under ``folder`` in its official layout, check that the
    registry builds the network from them, and return ``folder``."""
    make = OFFICIAL.get(method)
    if make is None:
        raise WeightsError(f"method={method!r}: its weights are missing and there is no random stand-in for it "
                           f"(random weights exist for {', '.join(OFFICIAL)})")
    torch.manual_seed(0)
    with torch.no_grad():
        dicts = make()
    needed = {wf.relpath for wf in method_entry(method).weights(None)}
    if set(dicts) != needed:
        raise WeightsError(f"method={method!r}: the random stand-in writes {sorted(dicts)} but the registry now "
                           f"expects {sorted(needed)}")
    for rel, sd in dicts.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        torch.save({k: v.detach().clone().contiguous() for k, v in sd.items()}, tmp)
        tmp.replace(path)
    model: nn.Module = load_model(method, folder)  # the strict load of the real path
    del model
    return folder


def weights_for(method: str, weights_dir: Path, random_root: Path) -> tuple[Path, str]:
    """(weights folder, ``pretrained`` | ``random`` | ``none``) for one method of the sweep."""
    if not method_entry(method).weights(None):
        return weights_dir, NONE
    if has_weights(method, weights_dir):
        return weights_dir, PRETRAINED
    folder = random_root / method
    shutil.rmtree(folder, ignore_errors=True)
    return write_random(method, folder), RANDOM
