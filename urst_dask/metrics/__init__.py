"""Measures of stylized images, pure numpy, no I/O: one module per idea.

* :mod:`.quality` - seams, fidelity (PSNR/SSIM) and statistics distance.
"""

from .quality import (
    SEAM_OFFSETS,
    data_range,
    psnr,
    seam_lines,
    seam_ratio,
    seam_score,
    ssim,
    ssim_sum,
    stats_distance,
)

__all__ = [
    "SEAM_OFFSETS", "data_range", "psnr", "seam_lines", "seam_ratio", "seam_score", "ssim", "ssim_sum",
    "stats_distance",
]
