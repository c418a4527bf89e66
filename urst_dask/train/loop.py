"""The training loop: sample, compute ``L = L_o + lambda * L_sp``, step Adam, log, checkpoint.

:func:`train` is the public entry (``urst-dask train`` calls it): it checks its inputs, loads
the starting network (``init``) or the resume point, and runs to ``steps`` total steps.  A
resumed run continues the step count, the optimizer's moments and the sampler's random
state, so it draws the batches an uninterrupted run would have drawn.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import OutputError, ParameterError, UrstError, WeightsError
from ..io.checkpoints import append_jsonl, trim_jsonl
from ..io.weights import resolve_weights_dir, state_dict_mismatch
from ..models import johnson as johnson_model
from ..models import load_model
from ..models import microast as microast_model
from ..settings import DeviceKind
from . import checkpoint
from .config import TrainConfig, TrainMethod
from .data import ContentSampler, StyleSampler
from .forward import unfreeze
from .lossnet import LossNet, build_lossnet
from .objectives import loss_layers, objective

log = logging.getLogger("urst_dask.train")
Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrainResult:
    out: Path
    first_step: int  # the step the run started from (0, or the resumed step)
    step: int  # the last step done
    seconds: float  # wall time of this call's steps
    losses: dict[str, float]  # the last step's losses
    files: tuple[Path, ...]  # the last checkpoint's files


def _init_net(cfg: TrainConfig) -> nn.Module:
    """The starting network: ``init`` loaded (frozen by the loader, then unfrozen) or random;
    a checkpoint of another network is one :class:`WeightsError` line, as in ``stylize``."""
    try:
        return _init_net_loaded(cfg)
    except RuntimeError as exc:
        error = state_dict_mismatch(exc, [str(cfg.init)], TrainMethod(cfg.method).value, f"init={cfg.init!r}")
        if error is None:
            raise
        raise error from None


def _init_net_loaded(cfg: TrainConfig) -> nn.Module:
    if cfg.method is TrainMethod.MICROAST:
        if cfg.init is None:
            return unfreeze(microast_model.MicroAST())
        init = Path(cfg.init)
        if not init.is_dir():
            raise WeightsError(f"init={cfg.init!r}: microast starts from a weights folder (holding microast/*.pth.tar)")
        return unfreeze(load_model("microast", init))
    if cfg.init is None:
        return unfreeze(johnson_model.JohnsonNet(cfg.style_name()))
    init = Path(cfg.init)
    if init.is_dir():
        cand = init / "johnson" / f"{cfg.style_name()}.pth"
        if not cand.is_file():
            raise WeightsError(f"init={cfg.init!r}: a folder without johnson/{cfg.style_name()}.pth; give a built-in "
                               f"style name ({', '.join(johnson_model.STYLES)}) or a .pth file")
        return unfreeze(load_model("johnson", init, str(cand.resolve())))
    wdir = resolve_weights_dir(cfg.weights)
    try:
        return unfreeze(load_model("johnson", wdir, cfg.init))
    except UrstError as exc:  # the loader names its argument 'style': here it is --init
        raise type(exc)(str(exc).replace(f"style={cfg.init!r}", f"init={cfg.init!r}", 1)) from exc


def _lossnet(cfg: TrainConfig) -> LossNet:
    layers = loss_layers(cfg)
    spec = dataclasses.replace(cfg.loss_net, extra=tuple(dict.fromkeys((layers.content, *layers.style))))
    return build_lossnet(spec, resolve_weights_dir(cfg.weights))


def _device(kind: DeviceKind) -> torch.device:
    """``auto``: the first CUDA device when there is one, else the CPU."""
    if kind is DeviceKind.CUDA and not torch.cuda.is_available():
        raise ParameterError("device='cuda': this machine has no CUDA device; use --device cpu or auto")
    return torch.device("cuda" if kind is not DeviceKind.CPU and torch.cuda.is_available() else "cpu")


def _nhwc(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.to(device).contiguous(memory_format=torch.channels_last)


def _lr(cfg: TrainConfig, step: int) -> float:
    """MicroAST upstream: ``lr / (1 + decay * step)``; Johnson: constant."""
    return cfg.setting("lr") / (1.0 + cfg.setting("lr_decay") * step)


def _check_out_of_inputs(cfg: TrainConfig) -> None:
    """Refuse an output folder that is, or lies inside, the content or style folder: the
    checkpoints and logs landed among the images, and the next run refused the folder."""
    out = Path(cfg.out).resolve()
    for arg in ("content", "style"):
        given = getattr(cfg, arg)
        folder = Path(given).resolve()
        if folder.is_dir() and (out == folder or folder in out.parents):
            how = "is" if out == folder else "is inside"
            raise OutputError(f"out={cfg.out!r}: {how} the {arg} folder {given!r}; the checkpoints and logs would "
                              "land among its images: choose a folder outside it")


def train(config: TrainConfig | None = None, *, progress: Progress | None = None, **kwargs: Any) -> TrainResult:
    """Train (or fine-tune) a network with the stroke perceptual loss; see :class:`TrainConfig`.

    Either a ``config`` or its fields as keywords.  ``progress`` receives a dict per logged
    step (``step``, ``steps``, each loss as a float, ``seconds``, ``lr``); by default lines go
    to the ``urst_dask.train`` logger.  Images are read as NCHW float32 RGB [0, 1]; the
    network trains on ``config.device`` (``auto``: CUDA when available).
    """
    if config is None:
        config = TrainConfig(**kwargs)
    elif kwargs:
        raise ParameterError(f"train: give a config or keywords, not both (got {sorted(kwargs)})")
    cfg = config
    report = progress or (lambda d: log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                      for k, v in d.items())))
    # inputs first: a bad folder or file fails before any network is loaded
    contents = ContentSampler(cfg.content, cfg.sampling)
    styles = StyleSampler(cfg.style, cfg.sampling)
    out = Path(cfg.out)
    _check_out_of_inputs(cfg)
    if cfg.resume:
        state = checkpoint.read_state(cfg)
    else:
        checkpoint.check_fresh(cfg)
        state = None
    try:  # the output folder before any network is loaded
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"out={str(cfg.out)!r}: cannot create the folder ({exc.strerror or exc})") from None
    device = _device(cfg.device)  # type: ignore[arg-type]
    net = _init_net(cfg)
    if state is not None and cfg.init is None:  # the records keep what the run started from
        cfg = dataclasses.replace(cfg, init=(state.get("config") or {}).get("init"))
    lossnet = _lossnet(cfg).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    history: dict[str, Any] = {"runs": []}
    if state is not None:
        net.load_state_dict(state["model"], strict=True)
        step, history = int(state["step"]), dict(state.get("history") or {"runs": []})
        gen.set_state(state["rng"])
    net.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # NHWC: grouped-conv backward runs ~2x faster on CPUs
    lossnet.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(net.parameters(), lr=_lr(cfg, step))
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
    if state is not None:  # steps logged after the last checkpoint are done again: their lines go
        trim_jsonl(out / checkpoint.LOG_FILE, step)
    first, t0, last = step, time.perf_counter(), {}
    files: tuple[Path, ...] = ()
    run_objective = objective(cfg)
    stroke = cfg.stroke_weight > 0
    while step < cfg.steps:
        batch = contents.batch(cfg.batch_size, gen)
        style = _nhwc(styles.batch(cfg.batch_size, gen), device)
        batch = dataclasses.replace(batch, patch=_nhwc(batch.patch, device), thumb=_nhwc(batch.thumb, device))
        for group in optimizer.param_groups:
            group["lr"] = _lr(cfg, step)
        parts = run_objective(net, lossnet, batch, style, cfg, stroke)
        optimizer.zero_grad(set_to_none=True)
        parts["total"].backward()
        optimizer.step()
        step += 1
        last = {k: float(v.detach()) for k, v in parts.items()}
        if step % cfg.log_every == 0 or step == cfg.steps or step == first + 1:
            entry = {"step": step, "steps": cfg.steps, **last, "lr": _lr(cfg, step - 1),
                     "seconds": round(time.perf_counter() - t0, 3)}
            append_jsonl(out / checkpoint.LOG_FILE, entry)
            report(entry)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            history["runs"] = [*history.get("runs", []), {"from": first, "to": step}][-50:]
            files = tuple(checkpoint.write_checkpoint(cfg, net, optimizer, gen, step, history))
    return TrainResult(out, first, step, time.perf_counter() - t0, last, files)
