"""Which device a worker runs the network on."""

from __future__ import annotations

import torch

from ..errors import UrstError
from ..settings import DeviceKind


class DeviceError(UrstError, RuntimeError):
    """The device asked for is not there (``device='cuda'`` on a worker without CUDA)."""


def resolve_device(kind: DeviceKind | str) -> torch.device:
    """``auto`` -> the (first visible) GPU if this process has one, else the CPU; ``cuda``
    without a CUDA device raises :class:`DeviceError`."""
    kind = DeviceKind.parse(kind, "device")
    if kind is DeviceKind.CUDA or (kind is DeviceKind.AUTO and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise DeviceError(f"device='cuda': this worker has no CUDA device (torch {torch.__version__}); "
                              "use --device cpu or auto")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
