"""``train``: fine-tune or train a network with URST's stroke perceptual loss."""

from __future__ import annotations

import argparse
import sys

from ..settings import DeviceKind

EXAMPLES = """Examples:
  urst-dask train --method johnson --content photos/ --style starry.jpg --steps 4000 --out runs/starry
  urst-dask train --method microast --content photos/ --style paintings/ --steps 20000 --out runs/mast \\
      --init /data/weights --device cuda
  urst-dask train --method johnson --content photos/ --style starry.jpg --steps 8000 --out runs/starry --resume
  urst-dask train --method johnson --content photos/ --style candy.jpg --steps 2000 --out runs/plain \\
      --stroke-weight 0
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a style network with the stroke perceptual loss (bigger strokes at "
                                     "ultra resolution)",
                       description="Train or fine-tune a feed-forward network with L = L_o + lambda * L_sp (the "
                                   "network's own loss plus URST's stroke perceptual loss); checkpoints are "
                                   "written in the method's own layout, so `stylize --weights` takes them.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True, choices=["microast", "johnson"],
                   help="the network to train: johnson (one network per style) or microast (arbitrary style)")
    p.add_argument("--content", required=True, help="folder of content photographs")
    p.add_argument("--style", required=True,
                   help="a painting (johnson: one network per style), or a folder of paintings (microast)")
    p.add_argument("--steps", type=int, required=True, help="total training steps (a resumed run continues to it)")
    p.add_argument("-o", "--out", required=True, help="output folder: checkpoints in the method's own layout, "
                                                "train-state.pt, train-log.jsonl")
    p.add_argument("--stroke-weight", type=float, default=1.0, help="lambda of L = L_o + lambda * L_sp; "
                                                                    "0 trains without the stroke loss; default 1")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (step count, optimizer state)")
    p.add_argument("--batch-size", type=int, default=8, help="default 8 (the paper's)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: microast 1e-4 with upstream decay, "
                                            "johnson 1e-3)")
    p.add_argument("--device", choices=[d.value for d in DeviceKind], default="auto",
                   help="where training runs; default auto (CUDA when present)")
    p.add_argument("--init", help="start from these weights (microast: a weights folder; johnson: a built-in style "
                                  "name, a .pth file, or a folder with johnson/<style stem>.pth); default: random")
    p.add_argument("--weights", help="the shipped weights folder for the loss network (default: $URST_DASK_WEIGHTS, "
                                     "then the user cache)")
    p.add_argument("--loss-net", choices=["vgg19", "wct16x"], default="vgg19",
                   help="loss network: vgg19 (the shipped VGG-19, to relu3_1) or wct16x (its level-4 encoder with "
                        "the aux embedding, to relu4_1); default vgg19")
    p.add_argument("--stroke-layer", default=None,
                   help="layer of the stroke loss (default relu3_1 for vgg19, relu4_1 for wct16x; the paper: relu4_1)")
    p.add_argument("--loss-weights", help="a full normalised VGG-19 (pytorch-AdaIN vgg_normalised.pth) for layers "
                                          "past relu3_1")
    p.add_argument("--content-weight", type=float, help="weight of the content term of L_o; default 1")
    p.add_argument("--style-weight", type=float, help="weight of the style term of L_o; default: microast 3, johnson 1e5")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints; default 100")
    p.add_argument("--log-every", type=int, default=10, help="steps between loss lines; default 10")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draws (which crops, in which order); default 0")
    p.set_defaults(func=_cmd_train)


def _progress(entry: dict) -> None:
    losses = "  ".join(f"{k} {entry[k]:.4g}" for k in ("total", "original", "content", "style", "stroke")
                       if k in entry)
    print(f"step {entry['step']}/{entry['steps']}  {losses}  ({entry['seconds']:.0f} s)", file=sys.stderr, flush=True)


def _cmd_train(a: argparse.Namespace) -> None:
    from ..train import LossNetSpec, TrainConfig, train

    layer = a.stroke_layer or ("relu4_1" if a.loss_net == "wct16x" or a.loss_weights else "relu3_1")
    cfg = TrainConfig(
        method=a.method, content=a.content, style=a.style, steps=a.steps, out=a.out,
        stroke_weight=a.stroke_weight, batch_size=a.batch_size, lr=a.lr, device=a.device, init=a.init,
        resume=a.resume, loss_net=LossNetSpec(a.loss_net, layer, a.loss_weights),
        content_weight=a.content_weight, style_weight=a.style_weight, checkpoint_every=a.checkpoint_every,
        log_every=a.log_every, seed=a.seed, weights=a.weights,
    )
    result = train(cfg, progress=(lambda entry: None) if a.quiet else _progress)
    if result.step == result.first_step and not a.quiet:
        print(f"urst-dask: {a.out} is already at step {result.step} of {a.steps}; nothing to do", file=sys.stderr)
    print(f"wrote {result.out} (step {result.step}, {result.seconds:.0f} s)")
