"""Tile geometry: where each window starts and ends, what it keeps, and how it blends.

A :class:`TilePlan` holds what the user chose (stride, margin, blend, alignment); resolved
against a network's :class:`~urst_dask.models.base.ModelInfo` it becomes a
:class:`TileGrid`, which answers every geometric question of the tile stage:

* **chunks.** Output chunks are ``stride`` pixels; a last chunk narrower than the overlap
  depth merges into its neighbour, so every chunk can lend its neighbours a full margin.
* **windows.** The network input of chunk ``[s, e)`` is ``[a, b)`` with at least ``margin``
  pixels of context on each side.  With alignment (the default) ``a`` and ``b`` lie on the
  network's size-multiple grid in *global* image coordinates, so every window puts the
  pooling grid at the same phase as whole-image inference: neighbouring windows render the
  same texture and the kept centres join without a seam.  At the image's border a window
  stops at the border, exactly as whole-image inference does (no invented context), and the
  bottom/right edge is padded to the size multiple the same way.
* **support.** The part of a window's output that is used: its chunk (``crop``), or its
  chunk plus ``margin`` on each inner side, feathered into the neighbours (``linear``,
  ``gaussian``).

Pure Python: no numpy arrays, no torch, no Dask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union

from ..errors import ParameterError, ParameterTypeError, as_int, bad_value
from ..settings import _Choice

MIN_STRIDE = 16
MAX_STRIDE = 1 << 15  # a window wider than 32768 px is a whole-image run (whole=True, --whole)
PAPER_STRIDE, PAPER_MARGIN = 1000, 32  # the paper's 1064-px windows at stride 1000


class Blend(_Choice):
    """How overlapping window outputs are combined (MONAI's sliding-window modes, on tiles)."""

    CROP = "crop"  # keep each window's centre only: the paper's assembling
    LINEAR = "linear"  # linear ramps across the 2*margin overlap band: weights sum to one
    GAUSSIAN = "gaussian"  # a Gaussian importance map per window (sigma = 1/8 of its side), normalized


AUTO = "auto"
Margin = Union[int, str]  # pixels, or "auto": the network's measured seam-free margin


@dataclass(frozen=True)
class TilePlan:
    """What the user chose for the tiling (validated on creation; network-independent).

    ``stride``: kept centre of each window and the output chunk size (pixels).
    ``margin``: context on each side of the kept centre, pixels or ``"auto"`` (the network's
    measured seam-free margin, see :func:`auto_margin`).  ``blend``: how overlaps combine.
    ``align``: windows start on the network's size-multiple grid (switch off only to
    reproduce the seams of unaligned tiling).
    """

    stride: int = field(default=PAPER_STRIDE, metadata={
        "help": "kept centre of each window = output chunk size", "aliases": ("--patch-size", "--patch_size")})
    # the paper's 32 leaves seams with wct16x/johnson: see README, "Tiling and seams"
    margin: Margin = field(default="auto", metadata={
        "help": "context on each side of a window's centre, pixels or 'auto' (the network's measured seam-free margin)",
        "aliases": ("--padding",), "type": "margin"})
    blend: Blend = field(default=Blend.CROP, metadata={
        "help": "how overlapping windows combine: crop (the paper), linear or gaussian feathering across the overlap"})
    # switched off on the command line by --no-align
    align: bool = field(default=True, metadata={"help": "", "cli": False})

    def __post_init__(self) -> None:
        stride = as_int("stride", self.stride)
        if stride < MIN_STRIDE:
            raise bad_value("stride", self.stride, f"must be >= {MIN_STRIDE}")
        if stride > MAX_STRIDE:  # numpy's offsets overflowed beyond 2**63, after the store was made
            raise bad_value("stride", self.stride, f"must be <= {MAX_STRIDE}; for one window over the whole "
                                                   "image, use whole=True (--whole)")
        object.__setattr__(self, "stride", stride)
        if isinstance(self.margin, str):
            if self.margin.lower() != AUTO:
                raise ParameterError(f"margin={self.margin!r}: must be a number of pixels or 'auto'")
            object.__setattr__(self, "margin", AUTO)
        else:
            margin = as_int("margin", self.margin)
            if margin < 0:
                raise bad_value("margin", self.margin, "must be >= 0")
            if 2 * margin >= stride:
                raise bad_value("margin", self.margin, f"must be < stride/2 = {stride / 2:g}")
            object.__setattr__(self, "margin", margin)
        object.__setattr__(self, "blend", Blend.parse(self.blend, "blend"))
        if not isinstance(self.align, bool):
            raise ParameterTypeError(f"align={self.align!r}: must be a bool")

    @classmethod
    def paper(cls) -> "TilePlan":
        """The paper's exact geometry: stride 1000, margin 32 (1064-px windows), crop, aligned."""
        return cls(stride=PAPER_STRIDE, margin=PAPER_MARGIN, blend=Blend.CROP, align=True)

    def resolve(self, size_multiple: int, seam_margin: int | None = None, receptive_field: int = 1) -> "TileGrid":
        """The concrete grid for a network with this size multiple (and measured seam-free
        margin / receptive field, for ``margin="auto"``)."""
        m = as_int("size_multiple", size_multiple)
        if m < 1:
            raise bad_value("size_multiple", size_multiple, "must be an integer >= 1 (the network's input multiple)")
        margin = self.margin if isinstance(self.margin, int) else auto_margin(seam_margin, receptive_field, m)
        margin = min(margin, (self.stride - 1) // 2)  # auto never breaks margin < stride/2
        depth = margin + (m - 1 if self.align else 0)
        if self.stride < depth:
            raise ParameterError(
                f"stride={self.stride}: too small for margin={margin} with a network whose size multiple is "
                f"{m}; needs stride >= {depth} (margin + size multiple - 1)")
        return TileGrid(stride=self.stride, margin=margin, multiple=m, blend=self.blend, align=self.align)


def auto_margin(seam_margin: int | None, receptive_field: int, multiple: int) -> int:
    """``--margin auto``: the network's measured seam-free margin when it has one (the
    smallest margin whose seams are invisible on real photographs, see
    ``benchmarks/bench_seams.py``), else a quarter of its receptive field, in [32, 128],
    rounded up to the size multiple."""
    if seam_margin is not None:
        return int(seam_margin)
    guess = min(128, max(32, receptive_field // 4))
    return int(math.ceil(guess / multiple) * multiple)


@dataclass(frozen=True)
class AxisWindow:
    """One window along one axis, in global pixel coordinates (half-open intervals).

    ``[start, stop)``: the output chunk; ``[lo, hi)``: the network input; ``[keep_lo,
    keep_hi)``: the part of the output that may be used, the chunk plus ``margin`` into each
    neighbour (a blend decides the weights; ``crop`` gives zero outside the chunk).
    """

    start: int
    stop: int
    lo: int
    hi: int
    keep_lo: int
    keep_hi: int


@dataclass(frozen=True)
class TileGrid:
    """A :class:`TilePlan` resolved for one network: every number is concrete."""

    stride: int
    margin: int
    multiple: int
    blend: Blend
    align: bool = True

    @property
    def window(self) -> int:
        """Nominal window side (``stride + 2 * margin``; aligned windows may be up to
        ``multiple - 1`` pixels larger on each side)."""
        return self.stride + 2 * self.margin

    @property
    def reach(self) -> int:
        """The most context a window may take beyond its chunk on one side."""
        return self.margin + (self.multiple - 1 if self.align else 0)

    @property
    def blends(self) -> bool:
        """Whether window outputs overlap (a blend with a non-zero margin)."""
        return self.blend is not Blend.CROP and self.margin > 0

    def axis_chunks(self, length: int) -> tuple[int, ...]:
        """Chunk sizes along an axis of ``length`` pixels: ``stride`` each, a last chunk
        narrower than :attr:`reach` merged into its neighbour."""
        if length < 1:
            raise bad_value("length", length, "must be >= 1")
        n = -(-length // self.stride)
        chunks = [self.stride] * (n - 1) + [length - self.stride * (n - 1)]
        if n > 1 and chunks[-1] < self.reach:
            tail = chunks.pop()
            chunks[-1] += tail
        return tuple(chunks)

    def axis_windows(self, length: int, whole: bool = False) -> tuple[AxisWindow, ...]:
        """The windows along an axis (one per chunk; one for the whole axis if ``whole``)."""
        if whole:
            return (AxisWindow(0, length, 0, length, 0, length),)
        chunks = self.axis_chunks(length)
        out, s = [], 0
        m = self.multiple if self.align else 1
        for c in chunks:
            e = s + c
            lo = max(0, (s - self.margin) // m * m)
            hi = min(length, -(-(e + self.margin) // m) * m)
            out.append(AxisWindow(s, e, lo, hi, max(0, s - self.margin), min(length, e + self.margin)))
            s = e
        return tuple(out)

    def axis_depth(self, length: int, whole: bool = False) -> int:
        """Overlap depth a chunk needs from each neighbour along this axis (0: one chunk)."""
        wins = self.axis_windows(length, whole)
        if len(wins) == 1:
            return 0
        return max(max(w.start - w.lo, w.hi - w.stop) for w in wins)


# a window at the image's far border shorter than this share of the standard runs at its own
# size (a 160-px bottom row padded to 1136 px would cost 7 windows' compute for one);
# a longer one is padded to the standard on its inner side
EDGE_SHARE = 0.75


def window_padding(h: int, w: int, standard: tuple[int, int], *, starts: tuple[bool, bool] = (True, True),
                   ends: tuple[bool, bool] = (True, True), multiple: int = 1) -> tuple[int, int, int, int]:
    """The mirrored padding ``(top, bottom, left, right)`` an ``h`` x ``w`` window runs with
    (every backend alike), in an image whose largest window is ``standard`` (padded to the
    network's ``multiple``).  ``starts``/``ends``: whether the window starts at the image's
    top/left and ends at its bottom/right border.

    Padding never goes past the image's border: there the network's edge is the image's edge,
    and the window is padded on the bottom/right to ``multiple`` only, as whole-image inference
    pads.  (Mirrored pixels past the border changed the last 128 rows of a 3840x2160
    photograph by 22 dB.)  Every other side is the window's inner side, whose overlap the
    crop discards: a short window is padded there to the standard.  A window that ends at the
    border and is shorter than ``EDGE_SHARE`` of the standard keeps its own size.  So most
    windows share the standard shape, and an image runs at most four shapes (interior, short
    bottom row, short right column, their corner): one compiled network each.
    """
    def one(n: int, std: int, start: bool, end: bool) -> tuple[int, int]:
        own = n + (-n) % max(1, multiple)
        if own >= std or (start and end):
            return 0, own - n
        if not end:
            return 0, std - n
        if own < EDGE_SHARE * std:
            return 0, own - n
        return std - own, own - n

    top, bottom = one(h, standard[0], starts[0], ends[0])
    left, right = one(w, standard[1], starts[1], ends[1])
    return top, bottom, left, right


def group_chunks(chunks: tuple[int, ...], batch: int) -> tuple[int, ...]:
    """``batch`` neighbouring chunks per task (windows batched into one network call)."""
    return tuple(sum(chunks[i : i + batch]) for i in range(0, len(chunks), max(1, batch)))


def offsets(chunks: tuple[int, ...]) -> tuple[int, ...]:
    """Start of each chunk (and the total length last)."""
    out = [0]
    for c in chunks:
        out.append(out[-1] + c)
    return tuple(out)
