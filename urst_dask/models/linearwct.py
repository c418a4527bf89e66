"""LinearWCT (Li, Liu, Kautz, Yang, CVPR 2019, "Learning Linear Transformations for Fast
Image and Video Style Transfer") in the layout of sunshineatnoon/LinearStyleTransfer, r41.

Three checkpoints (upstream ``libs/models.py`` and ``libs/Matrix.py``):

* ``vgg_r41.pth`` (``encoder4``): normalised VGG-19 to relu4_1 with named convs
  ``conv1`` (1x1 colour conv) ... ``conv10`` (relu4_1); reflection padding, 2x2 max pools
  (no ``ceil_mode``).
* ``dec_r41.pth`` (``decoder4``): ``conv11`` ... ``conv19``, nearest upsampling, no final ReLU.
* ``r41.pth`` (``MulLayer('r41')``): ``snet``/``cnet`` (``CNN``: ``convs.0/2/4`` 3x3 convs
  512->256->128->32 and ``fc`` Linear(1024, 1024) on the 32x32 Gram of their output),
  ``compress`` (1x1, 512->32) and ``unzip`` (1x1, 32->512).

The transformation: centre the content features by their mean; ``T = sMatrix @ cMatrix``
where ``cMatrix = cnet(centred content)`` and ``sMatrix = snet(centred style)``; output
``unzip(T @ compress(centred content)) + style mean``, then decode.  As in the URST reference
code, the content mean and ``cMatrix`` are the thumbnail statistics: one normalization
point ``r41`` with fields ``mean (C,)`` and ``cmatrix (32, 32)``.  The style's mean and
``sMatrix`` are in the StyleCode.  alpha (not in upstream; 1 reproduces it) blends the
transformed and the original relu4_1 features before decoding.

Input RGB [0, 1].  Where users get the files (not available in this project's shared
weights): ``models.zip`` from the Google Drive link in the upstream README,
https://drive.google.com/file/d/1H9T5rfXGlGCUh04DGkpkMFbVnmscJAbs/view ; put
``vgg_r41.pth``, ``dec_r41.pth`` and ``r41.pth`` in ``<weights>/linearwct/``.  Their sha256
is not recorded here (``""``).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ParameterError
from ..io.weights import WeightFile
from ..stats import StatsSource, StyleCode
from .base import ModelInfo, StyleModel, stacked_receptive_field
from .layers import reflect_conv
from .registry import Network
from .vgg import vgg_body

POINT = "r41"
MATRIX = 32  # matrixSize upstream

# encoder4: (name, in, out, kernel), "P" a 2x2 max pool; relu after every 3x3 conv
_ENCODER = (
    ("conv1", 3, 3, 1),  # colour / mean handling
    ("conv2", 3, 64, 3),  # relu1_1
    ("conv3", 64, 64, 3),  # relu1_2
    "P",
    ("conv4", 64, 128, 3),  # relu2_1
    ("conv5", 128, 128, 3),  # relu2_2
    "P",
    ("conv6", 128, 256, 3),  # relu3_1
    ("conv7", 256, 256, 3),
    ("conv8", 256, 256, 3),
    ("conv9", 256, 256, 3),  # relu3_4
    "P",
    ("conv10", 256, 512, 3),  # relu4_1
)
# decoder4: "U" a 2x nearest upsampling; relu after every conv but the last
_DECODER = (
    ("conv11", 512, 256),
    "U",
    ("conv12", 256, 256),
    ("conv13", 256, 256),
    ("conv14", 256, 256),
    ("conv15", 256, 128),
    "U",
    ("conv16", 128, 128),
    ("conv17", 128, 64),
    "U",
    ("conv18", 64, 64),
    ("conv19", 64, 3),  # to RGB
)


class Encoder4(nn.Module):
    """RGB [0, 1] -> relu4_1 (512 channels, 1/8 size)."""

    def __init__(self) -> None:
        super().__init__()
        for layer in _ENCODER:
            if isinstance(layer, tuple):
                name, cin, cout, k = layer
                setattr(self, name, nn.Conv2d(cin, cout, k))

    def forward(self, x: Tensor) -> Tensor:
        y = reflect_conv(cast(nn.Conv2d, self.conv1), x)  # 1x1: no padding
        for layer in _ENCODER[1:]:
            y = F.relu(reflect_conv(getattr(self, layer[0]), y)) if isinstance(layer, tuple) else F.max_pool2d(y, 2, 2)
        return y


class Decoder4(nn.Module):
    """relu4_1 -> RGB (unclamped)."""

    def __init__(self) -> None:
        super().__init__()
        for layer in _DECODER:
            if isinstance(layer, tuple):
                name, cin, cout = layer
                setattr(self, name, nn.Conv2d(cin, cout, 3))

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for layer in _DECODER:
            if layer == "U":
                y = F.interpolate(y, scale_factor=2.0, mode="nearest")
                continue
            y = reflect_conv(getattr(self, layer[0]), y)
            if layer[0] != "conv19":
                y = F.relu(y)
        return y


class MatrixCNN(nn.Module):
    """Upstream ``CNN('r41')``: centred features -> a flattened 32x32 matrix, per sample."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(512, 256, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 128, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(128, MATRIX, 3, 1, 1),
        )
        self.fc = nn.Linear(MATRIX * MATRIX, MATRIX * MATRIX)

    def forward(self, x: Tensor) -> Tensor:
        out = self.convs(x).flatten(2)  # (N, 32, HW)
        gram = out @ out.transpose(1, 2) / out.shape[2]
        return self.fc(gram.flatten(1)).view(-1, MATRIX, MATRIX)


class MulLayer(nn.Module):
    """Upstream ``MulLayer('r41')``: the learned linear transformation (weights only here)."""

    def __init__(self) -> None:
        super().__init__()
        self.snet = MatrixCNN()
        self.cnet = MatrixCNN()
        self.compress = nn.Conv2d(512, MATRIX, 1, 1, 0)
        self.unzip = nn.Conv2d(MATRIX, 512, 1, 1, 0)


def _channel_mean(feat: Tensor) -> Tensor:
    return feat.flatten(2).mean(dim=2)  # (N, C)


INFO = ModelInfo(
    name="linearwct",
    size_multiple=8,
    receptive_field=stacked_receptive_field((vgg_body("41"),)),
    takes_style_image=True,
    supports_alpha=True,
    content_only_stats=True,  # one point, on the content's features
)


class LinearWct(StyleModel):
    """Encoder to relu4_1, learned linear transformation with thumbnail content statistics, decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder4()
        self.decoder = Decoder4()
        self.matrix = MulLayer()
        self.info = INFO

    def _content_stats(self, feat: Tensor) -> dict[str, Tensor]:
        mean = _channel_mean(feat)
        centred = feat - mean[:, :, None, None]
        return {"mean": mean, "cmatrix": self.matrix.cnet(centred)}

    def prepare_style(self, style: Tensor | None) -> StyleCode:
        if style is None:
            raise ParameterError("style=None: linearwct needs a style image")
        with torch.inference_mode():
            f = self.encoder(style.float())
            mean = _channel_mean(f)
            smatrix = self.matrix.snet(f - mean[:, :, None, None])
        return StyleCode.build(
            self.info.name, {POINT: {"mean": mean[0].cpu().numpy(), "smatrix": smatrix[0].cpu().numpy()}}
        )

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        f = self.encoder(x)  # relu4_1
        content = source.get(POINT, f, self._content_stats)  # per sample unless frozen
        s = style.tensors(POINT, f.device)
        mean = content["mean"].to(f.dtype).reshape(-1, f.shape[1], 1, 1)
        cmatrix = content["cmatrix"].to(f.dtype).reshape(-1, MATRIX, MATRIX)
        trans = s["smatrix"].to(f.dtype) @ cmatrix  # (N or 1, 32, 32)
        compressed = self.matrix.compress(f - mean)
        n, c, h, w = compressed.shape
        moved = (trans @ compressed.flatten(2)).view(n, c, h, w)
        t = self.matrix.unzip(moved) + s["mean"].to(f.dtype).reshape(1, -1, 1, 1)
        if alpha != 1.0:
            t = alpha * t + (1.0 - alpha) * f
        return self.decoder(t).clamp(0.0, 1.0)


_WHERE = "models.zip from https://drive.google.com/file/d/1H9T5rfXGlGCUh04DGkpkMFbVnmscJAbs/view"

WEIGHTS: tuple[WeightFile, ...] = (
    # sha256 unknown and no direct per-file download
    WeightFile("linearwct/vgg_r41.pth", "", None, f"LinearWCT encoder to relu4_1 (in {_WHERE})"),
    WeightFile("linearwct/dec_r41.pth", "", None, f"LinearWCT decoder from relu4_1 (in {_WHERE})"),
    WeightFile("linearwct/r41.pth", "", None, f"LinearWCT transformation module r41 (in {_WHERE})"),
)


def build(state_dicts: dict[str, dict[str, Tensor]], variant: str | None = None) -> LinearWct:
    """Build from ``{relpath: state_dict}``: each file loaded strictly into its part."""
    model = LinearWct()
    model.encoder.load_state_dict(state_dicts["linearwct/vgg_r41.pth"], strict=True)
    model.decoder.load_state_dict(state_dicts["linearwct/dec_r41.pth"], strict=True)
    model.matrix.load_state_dict(state_dicts["linearwct/r41.pth"], strict=True)
    return model.freeze()


NETWORK = Network(INFO, "LinearWCT (Li et al. 2019), r41 checkpoints (user-supplied)",
                  build, catalogue=WEIGHTS)
