"""Checkpoints of a training run.

Two things are written into the output folder at each checkpoint:

* the network in its method's own layout, exactly the file names and keys the loader reads,
  so ``urst-dask stylize --method M --weights OUT`` uses it with nothing else to do:

  - microast: ``OUT/microast/{content_encoder,style_encoder,modulator,decoder}_iter_160000.pth.tar``
    (the loader's fixed names; each a plain state dict);
  - johnson: ``OUT/johnson/<style stem>.pth`` (the TransformerNet state dict); run it with
    ``--method johnson --style OUT/johnson/<stem>.pth`` (or ``--style <stem>`` with
    ``--weights OUT`` when the stem is a built-in style name);

  each with its ``.trained.json`` record (sha256, method, step), which lets the loader's
  hash check accept the fine-tuned file (:mod:`urst_dask.io.checkpoints`);
* ``OUT/train-state.pt``, written last: step, network, optimizer and sampler state and the
  configuration; ``--resume`` continues from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import OutputError
from ..io.checkpoints import load_tensors, save_tensors, save_trained
from ..models import microast as microast_model
from .config import TrainConfig, TrainMethod

STATE_FILE = "train-state.pt"
LOG_FILE = "train-log.jsonl"
STATE_FORMAT = 1


def method_files(cfg: TrainConfig, out: Path) -> dict[str, Path]:
    """``{part: path}`` of the method's checkpoint files under ``out`` (part "" for one file)."""
    if cfg.method is TrainMethod.MICROAST:
        parts = {}
        for wf in microast_model.WEIGHTS:
            part = wf.relpath.split("/", 1)[1].split("_iter_", 1)[0]
            parts[part] = out / wf.relpath
        return parts
    return {"": out / "johnson" / f"{cfg.style_name()}.pth"}


def _part_state(net: nn.Module, part: str) -> dict[str, torch.Tensor]:
    module = getattr(net, part) if part else net
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def write_checkpoint(cfg: TrainConfig, net: nn.Module, optimizer: torch.optim.Optimizer, gen: torch.Generator,
                     step: int, history: dict[str, Any]) -> list[Path]:
    """Write the method-layout files and then the training state; return the paths written."""
    out = Path(cfg.out)
    record = {"method": cfg.method_name, "step": step, "init": cfg.init,
              "stroke_weight": cfg.stroke_weight, "written_by": "urst-dask train"}
    written = [save_trained(_part_state(net, part), path, record) for part, path in method_files(cfg, out).items()]
    state = {
        "format": STATE_FORMAT,
        "method": cfg.method_name,
        "step": step,
        "model": _part_state(net, ""),
        "optimizer": optimizer.state_dict(),
        "rng": gen.get_state(),
        "config": cfg.record(),
        "history": history,
    }
    written.append(save_tensors(state, out / STATE_FILE))
    return written


def read_state(cfg: TrainConfig) -> dict[str, Any]:
    """The training state to resume from; one-line errors for a missing or foreign state."""
    path = Path(cfg.out) / STATE_FILE
    if not path.is_file():
        raise OutputError(f"out={cfg.out!r}: nothing to resume ({STATE_FILE} is missing); drop --resume to start")
    try:
        state = load_tensors(path)
    except Exception as exc:
        raise OutputError(f"out={cfg.out!r}: {STATE_FILE} cannot be read ({type(exc).__name__}); "
                          "remove it to start again") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise OutputError(f"out={cfg.out!r}: {STATE_FILE} is not a urst-dask training state")
    if state.get("method") != cfg.method_name:
        raise OutputError(f"out={cfg.out!r}: its training state is for method {state.get('method')!r}, "
                          f"not {cfg.method_name!r}")
    _check_same_run(cfg, dict(state.get("config") or {}))
    return state


# what a run trains towards: a resume must keep them (--steps may grow; --init may be left out)
SAME_RUN = ("content", "style", "stroke_weight", "batch_size", "lr", "loss_net", "content_weight", "style_weight",
            "seed", "init")


def _check_same_run(cfg: TrainConfig, recorded: dict[str, Any]) -> None:
    now = cfg.record()
    changed = [f"{k} {now[k]!r} (the run's: {recorded[k]!r})" for k in SAME_RUN
               if k in recorded and now.get(k) != recorded[k] and not (k == "init" and now.get(k) is None)]
    if changed:
        raise OutputError(f"out={cfg.out!r}: --resume with other settings than the run it continues: "
                          f"{'; '.join(changed)}; give the run's settings, or start a new --out")


def check_fresh(cfg: TrainConfig) -> None:
    """Without ``--resume``, refuse an output folder that already holds a training state."""
    if (Path(cfg.out) / STATE_FILE).exists():
        raise OutputError(f"out={cfg.out!r}: already holds a training run ({STATE_FILE}); pass --resume to "
                          "continue it, or choose another folder")
