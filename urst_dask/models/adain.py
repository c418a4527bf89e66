"""AdaIN (Huang & Belongie, ICCV 2017) in the layout of naoto0804/pytorch-AdaIN (``net.py``).

Two checkpoints, both ``nn.Sequential`` state dicts keyed by sequence index:

* ``vgg_normalised.pth``: the whole normalised VGG-19 of that repository (1x1 colour conv,
  reflection-padded 3x3 convs up to relu5_4, ``ceil_mode`` max pools).  Only the first 31
  modules (up to relu4_1) are used; the file is loaded strictly into the full network and
  the unused tail (relu4_2..relu5_4, about 80% of the parameters) is then dropped.
* ``decoder.pth``: the mirrored decoder relu4_1 -> RGB (nearest upsampling, no final ReLU).

Input RGB [0, 1].  One normalization point, ``relu4_1``: AdaIN with the content mean/std
(unbiased variance + 1e-5, as upstream ``calc_mean_std``) from the thumbnail, and the style
mean/std in the StyleCode.  alpha blends in feature space as upstream ``test.py``:
``alpha * adain(f) + (1 - alpha) * f``.

Where users get the files (not available in this project's shared weights): the release
https://github.com/naoto0804/pytorch-AdaIN/releases/tag/v0.0.0, assets
``vgg_normalised.pth`` and ``decoder.pth``; put them in ``<weights>/adain/``.  Their sha256 is
not recorded here (``""``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import kernels
from ..errors import ParameterError
from ..io.weights import WeightFile
from ..stats import StatsSource, StyleCode
from .base import ModelInfo, StyleModel, stacked_receptive_field
from .layers import adain_stats
from .registry import Network
from .vgg import vgg_body, vgg_decoder_layers, vgg_encoder_layers

POINT = "relu4_1"
ENCODER_DEPTH = 31  # modules 0..30 of the upstream VGG: the output of module 30 is relu4_1
EPS = 1e-5


def full_vgg() -> nn.Sequential:
    """The upstream ``net.vgg`` (up to relu5_4), the layout of ``vgg_normalised.pth``."""
    return vgg_encoder_layers("54")


INFO = ModelInfo(
    name="adain",
    size_multiple=8,
    receptive_field=stacked_receptive_field((vgg_body("41"),)),
    takes_style_image=True,
    supports_alpha=True,
    content_only_stats=True,  # one point, on the content's features
)


class AdaIN(StyleModel):
    """VGG-19 encoder to relu4_1, AdaIN with thumbnail content statistics, decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = vgg_encoder_layers("41")  # modules 0..30 of the upstream VGG, ends at relu4_1
        self.decoder = vgg_decoder_layers("41")
        self.info = INFO

    def prepare_style(self, style: Tensor | None) -> StyleCode:
        if style is None:
            raise ParameterError("style=None: adain needs a style image")
        with torch.inference_mode():
            f = self.encoder(style.float())
            st = adain_stats(f)
            mean, std = st["mean"], st["std"]
        return StyleCode.build(self.info.name, {POINT: {"mean": mean[0].cpu().numpy(), "std": std[0].cpu().numpy()}})

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        f = self.encoder(x)  # relu4_1
        content = source.get(POINT, f, adain_stats)  # per sample (N, C) unless frozen
        s = style.tensors(POINT, f.device)
        t = kernels.adain(f, content["mean"], content["std"], s["mean"], s["std"])
        if alpha != 1.0:
            t = alpha * t + (1.0 - alpha) * f
        return self.decoder(t).clamp(0.0, 1.0)


_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/"

WEIGHTS: tuple[WeightFile, ...] = (
    # sha256 unknown, so no automatic download; the release URL goes into the messages
    WeightFile(
        "adain/vgg_normalised.pth", "", None, f"AdaIN normalised VGG-19 encoder, from {_RELEASE}vgg_normalised.pth"
    ),
    WeightFile("adain/decoder.pth", "", None, f"AdaIN decoder, from {_RELEASE}decoder.pth"),
)


def build(state_dicts: dict[str, dict[str, Tensor]], variant: str | None = None) -> AdaIN:
    """Build from ``{relpath: state_dict}``: both files are loaded strictly."""
    model = AdaIN()
    with torch.device("meta"):  # no need to initialise weights that are loaded next
        vgg = full_vgg()
    vgg.load_state_dict(state_dicts["adain/vgg_normalised.pth"], strict=True, assign=True)
    # keep modules 0..30 (up to relu4_1); relu4_2..relu5_4 are never used
    model.encoder.load_state_dict(vgg[:ENCODER_DEPTH].state_dict(), strict=True)
    model.decoder.load_state_dict(state_dicts["adain/decoder.pth"], strict=True)
    return model.freeze()


NETWORK = Network(INFO, "AdaIN (Huang & Belongie 2017), pytorch-AdaIN checkpoints (user-supplied)",
                  build, catalogue=WEIGHTS)
