"""The original VGG-19 WCT of Li et al. (NeurIPS 2017, "Universal Style Transfer via
Feature Transforms"), multi-level and cascaded, with thumbnail whitening statistics.

Encoder k is the normalised VGG-19 up to relu{k}_1 (a 1x1 colour conv, then reflection-
padded 3x3 convs, 2x2 max pools with ``ceil_mode=True``); decoder k mirrors it with 2x
nearest upsampling and ends in a plain 3x3 conv to RGB.  Both are ``nn.Sequential`` state
dicts keyed by sequence index (``0.weight (3, 3, 1, 1)``, ``2.weight (64, 3, 3, 3)``...),
the layout of github.com/pietrocarbo/deep-transfer ``models/autoencoder_vgg19/vgg19_{k}/``
(``vgg_normalised_conv{k}_1.pth``, ``feature_invertor_conv{k}_1.pth``).

Stylization runs coarse to fine: for k = K..1 encode, whiten with the (thumbnail's)
content mean and whitening matrix, colour with the style's, blend by alpha, decode.  The
variant string is the top level K ("1".."5"; default "3", the levels shipped in
``shared/weights/wct_vgg19``).

The VGG-19 layer builders live in :mod:`.vgg` (shared with AdaIN and LinearWCT).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import ParameterError
from ..io.weights import WeightFile
from .base import ModelInfo, stacked_receptive_field
from .cascade import CascadedWct
from .registry import Network
from .vgg import vgg_body, vgg_decoder_layers, vgg_encoder_layers

MAX_LEVEL = 5
DEFAULT_LEVEL = 3
SUBDIR = "wct_vgg19"


def parse_levels(variant: str | None) -> tuple[int, ...]:
    """Variant "K" (default "3") -> the cascade ``(K, K-1, ..., 1)``."""
    if variant is None or variant == "":
        top = DEFAULT_LEVEL
    else:
        text = str(variant).strip()
        if text not in {str(k) for k in range(1, MAX_LEVEL + 1)}:
            raise ParameterError(
                f"variant={variant!r}: the WCT variant is the top level of the cascade, one of 1..{MAX_LEVEL}"
            )
        top = int(text)
    return tuple(range(top, 0, -1))


def info_for(levels: tuple[int, ...]) -> ModelInfo:
    """The geometry of the cascade ``levels`` (e.g. ``(3, 2, 1)``)."""
    return ModelInfo(
        name="wct",
        size_multiple=2 ** (max(levels) - 1),
        receptive_field=stacked_receptive_field(tuple(vgg_body(f"{k}1") for k in levels)),
        takes_style_image=True,
        supports_alpha=True,
        # levels 3..1 (the default): margin 32 already equals whole-image inference
        # (benchmarks/results/seams-*.json); deeper levels are not measured here
        seam_margin=32 if max(levels) <= 3 else None,
    )


INFO = info_for(parse_levels(None))


class Wct(CascadedWct):
    """Cascaded multi-level WCT with the full normalised VGG-19 encoders/decoders."""

    clamp_output = True

    def __init__(self, levels: tuple[int, ...] = parse_levels(None)) -> None:
        super().__init__()
        self.levels = tuple(levels)
        self.encoders = nn.ModuleDict({str(k): vgg_encoder_layers(f"{k}1") for k in self.levels})
        self.decoders = nn.ModuleDict({str(k): vgg_decoder_layers(f"{k}1") for k in self.levels})
        self.info = info_for(self.levels)


# sha256 of the level 1-3 files in shared/weights/wct_vgg19; levels 4-5 are not available
# here, so their hash is unknown ("").
_SHA = {
    "vgg_normalised_conv1_1.pth": "9f60c0230232985e2505eeaaeb670119eacfd590cb06c2ea752538b974a1d2aa",
    "vgg_normalised_conv2_1.pth": "b86e3e26b907a9d97a0567826b18fc85c23b5873acc1c2b7ddb9b0a70fc4a0cb",
    "vgg_normalised_conv3_1.pth": "ff8506173d3a17e7b0fbfbff242c00b6827cfbcd7c21852b46806ae6a3fd7b09",
    "feature_invertor_conv1_1.pth": "78e72d8d80ea9460c45bc89bf9c29d0804639771e443a18c46e20e1f73a57578",
    "feature_invertor_conv2_1.pth": "4d4134c572dfa273b4f1f3d76a2439d62197a018de6d743c2b9d85b2093c409e",
    "feature_invertor_conv3_1.pth": "f32bc7bd366ff027936b3d90a98bc3f8667ba3f2762df916261a0586c5e30ab5",
}
# The deep-transfer repository stores the level 1-3 checkpoints in git; 4-5 only as code.
_UPSTREAM = "https://github.com/pietrocarbo/deep-transfer/raw/master/models/autoencoder_vgg19/"
_UPSTREAM_LEVELS = (1, 2, 3)


def encoder_file(k: int) -> WeightFile:
    name = f"vgg_normalised_conv{k}_1.pth"
    url = f"{_UPSTREAM}vgg19_{k}/{name}" if k in _UPSTREAM_LEVELS else None
    return WeightFile(f"{SUBDIR}/{name}", _SHA.get(name, ""), url, f"WCT VGG-19 level-{k} encoder (relu{k}_1)")


def decoder_file(k: int) -> WeightFile:
    name = f"feature_invertor_conv{k}_1.pth"
    url = f"{_UPSTREAM}vgg19_{k}/{name}" if k in _UPSTREAM_LEVELS else None
    return WeightFile(f"{SUBDIR}/{name}", _SHA.get(name, ""), url, f"WCT VGG-19 level-{k} decoder")


def weights_for(variant: str | None = None) -> tuple[WeightFile, ...]:
    """The checkpoint files the cascade of ``variant`` needs (levels 1..K)."""
    levels = sorted(parse_levels(variant))
    return tuple(f for k in levels for f in (encoder_file(k), decoder_file(k)))


WEIGHTS: tuple[WeightFile, ...] = weights_for(None)
ALL_WEIGHTS: tuple[WeightFile, ...] = weights_for(str(MAX_LEVEL))


def build(state_dicts: dict[str, dict[str, Tensor]], variant: str | None = None) -> Wct:
    """Build the cascade of ``variant`` from ``{relpath: state_dict}`` (strict loading)."""
    model = Wct(parse_levels(variant))
    for k in model.levels:
        model.encoders[str(k)].load_state_dict(state_dicts[encoder_file(k).relpath], strict=True)
        model.decoders[str(k)].load_state_dict(state_dicts[decoder_file(k).relpath], strict=True)
    return model.freeze()


NETWORK = Network(INFO, "original VGG-19 WCT (Li et al. 2017), levels K..1 (style variant K, default 3)",
                  build, catalogue=ALL_WEIGHTS, files_for=weights_for)
