"""Image-folder datasets with URST's sampling (paper, "Stroke perceptual loss").

* Content: resize to shorter side 512, a random 512 x 512 crop; from it a random 256 x 256
  patch and the 256 x 256 thumbnail of the whole crop (area-like, antialiased resize).
* Style: resize to shorter side 256, a random 256 x 256 crop.

Files are listed and decoded only through :mod:`urst_dask.io.folders`; decoded, resized
images are kept in memory (``cache`` images per folder) so a small folder is decoded once.
Randomness comes from one ``torch.Generator`` whose state the training checkpoint saves, so
a resumed run draws the same samples as an uninterrupted one.  Tensors are NCHW float32 RGB
in [0, 1] on the CPU.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import bad_value
from ..io.folders import list_images, read_rgb


@dataclass(frozen=True)
class Sampling:
    """Sizes of the paper's sampling (defaults) - smaller for tests."""

    content_short: int = 512
    crop: int = 512
    patch: int = 256
    thumb: int = 256
    style_short: int = 256
    style_crop: int = 256

    def __post_init__(self) -> None:
        for name in ("content_short", "crop", "patch", "thumb", "style_short", "style_crop"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 8 or v % 4:
                raise bad_value(name, v, "must be an integer >= 8 and a multiple of 4")
        if self.crop > self.content_short or self.patch > self.crop or self.thumb > self.crop:
            raise bad_value("crop", self.crop, "needs patch, thumb <= crop <= content_short")
        if self.style_crop > self.style_short:
            raise bad_value("style_crop", self.style_crop, "must be <= style_short")


@dataclass(frozen=True)
class ContentBatch:
    patch: Tensor  # (N, 3, p, p): the random patch of each 512 crop
    thumb: Tensor  # (N, 3, t, t): the whole crop resized
    boxes: Tensor  # (N, 2) int64: the patch's (y, x) in crop pixels
    crop: int  # the crop side (the thumbnail is upsampled back to it for the stroke target)


def resize_short(img: Tensor, short: int) -> Tensor:
    """``(3, H, W)`` -> shorter side ``short``, aspect kept (bilinear, antialiased when shrinking)."""
    h, w = img.shape[-2:]
    scale = short / min(h, w)
    size = (max(short, round(h * scale)), max(short, round(w * scale)))
    return F.interpolate(img[None], size=size, mode="bilinear", align_corners=False,
                         antialias=scale < 1)[0].clamp_(0.0, 1.0)


def _randint(hi: int, gen: torch.Generator) -> int:
    return int(torch.randint(0, hi + 1, (1,), generator=gen))


class ImageFolder:
    """The images of a folder (or one file), resized to a shorter side, kept in memory."""

    def __init__(self, path: str, arg: str, short: int, cache: int = 256) -> None:
        self.files: list[Path] = list_images(path, arg)
        self.arg = arg
        self.short = short
        self.cache_size = cache
        self._cache: OrderedDict[Path, Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self.files)

    def image(self, i: int) -> Tensor:
        f = self.files[i]
        if f in self._cache:
            self._cache.move_to_end(f)
            return self._cache[f]
        rgb = read_rgb(f, self.arg)
        t = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).float().div_(255.0)
        t = resize_short(t, self.short)
        self._cache[f] = t
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return t

    def random_crop(self, side: int, gen: torch.Generator) -> Tensor:
        img = self.image(_randint(len(self) - 1, gen))
        h, w = img.shape[-2:]
        y, x = _randint(h - side, gen), _randint(w - side, gen)
        return img[:, y : y + side, x : x + side]


class ContentSampler:
    """Content batches: patch, thumbnail and the patch position, per the paper."""

    def __init__(self, folder: str, sampling: Sampling = Sampling(), arg: str = "content") -> None:
        self.sampling = sampling
        self.images = ImageFolder(folder, arg, sampling.content_short)

    def batch(self, n: int, gen: torch.Generator) -> ContentBatch:
        s = self.sampling
        patches, thumbs, boxes = [], [], []
        for _ in range(n):
            crop = self.images.random_crop(s.crop, gen)
            y, x = _randint(s.crop - s.patch, gen), _randint(s.crop - s.patch, gen)
            patches.append(crop[:, y : y + s.patch, x : x + s.patch])
            thumbs.append(F.interpolate(crop[None], size=(s.thumb, s.thumb), mode="bilinear", align_corners=False,
                                        antialias=True)[0].clamp(0.0, 1.0))
            boxes.append((y, x))
        return ContentBatch(torch.stack(patches), torch.stack(thumbs), torch.tensor(boxes, dtype=torch.int64), s.crop)


class StyleSampler:
    """Style batches: shorter side 256, a random 256 crop, per the paper."""

    def __init__(self, path: str, sampling: Sampling = Sampling(), arg: str = "style") -> None:
        self.sampling = sampling
        self.images = ImageFolder(path, arg, sampling.style_short)

    def batch(self, n: int, gen: torch.Generator) -> Tensor:
        return torch.stack([self.images.random_crop(self.sampling.style_crop, gen) for _ in range(n)])
