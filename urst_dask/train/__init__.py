"""Training with URST's stroke perceptual loss (``urst-dask train``).

* :mod:`.losses` - the losses as pure functions (``L_sp``, MicroAST's and Johnson's ``L_o``);
* :mod:`.lossnet` - the frozen loss network (VGG-19 to relu3_1, or wct16x + aux to relu4_1);
* :mod:`.data` - image folders with the paper's sampling;
* :mod:`.forward` - differentiable thumbnail/patch passes with thumbnail statistics;
* :mod:`.objectives` - each method's losses of one batch;
* :mod:`.loop` - :func:`train`; :mod:`.checkpoint` - the method-layout checkpoints and resume state.
"""

from .config import DEFAULTS, TrainConfig, TrainMethod
from .data import Sampling
from .loop import TrainResult, train
from .lossnet import LossNetKind, LossNetSpec

__all__ = ["DEFAULTS", "LossNetKind", "LossNetSpec", "Sampling", "TrainConfig", "TrainMethod", "TrainResult", "train"]
