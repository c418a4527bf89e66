"""Training with the stroke perceptual loss: one step lowers the loss, the target is detached,
checkpoints load through ``stylize --weights``, resume continues exactly, bad input is one line.

Tiny images (32 px crops, 16 px patches) and one or two steps; the loss network is the shipped
VGG-19 (relu3_1), so these tests need the weights folder.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import urst_dask
from urst_dask.cli import main
from urst_dask.errors import InputImageError, OutputError, ParameterError, ParameterTypeError, UrstError, WeightsError
from urst_dask.io import store
from urst_dask.io.weights import load_state_dict
from urst_dask.models import load_model
from urst_dask.models import microast as microast_model
from urst_dask.train import LossNetSpec, Sampling, TrainConfig, losses, train
from urst_dask.train.checkpoint import STATE_FILE, method_files
from urst_dask.train.data import ContentSampler, StyleSampler
from urst_dask.train.forward import unfreeze
from urst_dask.train.lossnet import build_lossnet
from urst_dask.train.objectives import objective

TINY = Sampling(content_short=32, crop=32, patch=16, thumb=16, style_short=16, style_crop=16)


def _png(path: Path, h: int, w: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = (np.sin(x / 3.0 + seed) * 60 + np.cos(y / 5.0) * 50 + 128)[..., None]
    img = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "content").mkdir()
    (tmp_path / "styles").mkdir()
    for i, (h, w) in enumerate(((40, 52), (36, 36), (48, 40))):
        _png(tmp_path / "content" / f"c{i}.png", h, w, i)
    _png(tmp_path / "styles" / "wave.png", 30, 40, 7)
    _png(tmp_path / "styles" / "scream.png", 40, 30, 8)
    return {"content": tmp_path / "content", "styles": tmp_path / "styles", "style": tmp_path / "styles" / "wave.png",
            "root": tmp_path}


def _cfg(data: dict[str, Path], weights: Path, method: str = "microast", **kw) -> TrainConfig:
    base = dict(method=method, content=str(data["content"]),
                style=str(data["styles"] if method == "microast" else data["style"]), steps=1,
                out=str(data["root"] / f"out-{method}"), batch_size=2, sampling=TINY, weights=str(weights), log_every=1)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("method", ["microast", "johnson"])
def test_one_step_lowers_the_loss(data, weights, method):
    """Same batch before and after one Adam step (lr 1e-3): the total loss goes down."""
    cfg = _cfg(data, weights, method, lr=1e-3)
    torch.manual_seed(0)
    net = unfreeze(microast_model.MicroAST()) if method == "microast" else unfreeze(load_model("johnson", weights, "candy"))
    lossnet = build_lossnet(dataclasses.replace(cfg.loss_net, extra=("relu1_1", "relu1_2", "relu2_1", "relu2_2",
                                                                     "relu3_1")), weights)
    gen = torch.Generator().manual_seed(1)
    batch = ContentSampler(cfg.content, TINY).batch(2, gen)
    style = StyleSampler(cfg.style, TINY).batch(2, gen)
    run = objective(cfg)
    before = run(net, lossnet, batch, style, cfg, True)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    before["total"].backward()
    opt.step()
    with torch.no_grad():
        after = run(net, lossnet, batch, style, cfg, True)
    assert set(before) >= {"content", "style", "stroke", "original", "total"}
    assert float(after["total"]) < float(before["total"].detach())


def test_stroke_target_gets_no_gradient(weights):
    """L_sp's gradient reaches the patch, never the thumbnail through the target, even when the
    caller passes a target that still requires grad; a non-detached target would get one."""
    lossnet = build_lossnet(LossNetSpec(), weights)
    thumb_out = torch.rand(2, 3, 16, 16, requires_grad=True)
    patch_out = torch.rand(2, 3, 16, 16, requires_grad=True)
    boxes = torch.tensor([[0, 0], [16, 8]])
    target = losses.thumbnail_patch_target(thumb_out, 32, boxes, 16)
    assert not target.requires_grad
    losses.stroke_perceptual_loss(patch_out, target, lossnet).backward()
    assert thumb_out.grad is None and patch_out.grad is not None and patch_out.grad.abs().sum() > 0
    # the target handed over with its graph attached: still detached inside the loss
    patch_out.grad = None
    attached = torch.nn.functional.interpolate(thumb_out, size=(32, 32), mode="bilinear")[:, :, :16, :16]
    losses.stroke_perceptual_loss(patch_out, attached, lossnet).backward()
    assert thumb_out.grad is None
    # control: the same MSE without the detach does send a gradient to the thumbnail
    feats = lossnet(patch_out)["relu3_1"]
    torch.nn.functional.mse_loss(feats, lossnet(attached)["relu3_1"]).backward()
    assert thumb_out.grad is not None and thumb_out.grad.abs().sum() > 0


def test_loss_is_original_plus_lambda_stroke(data, weights):
    cfg = _cfg(data, weights, "johnson", stroke_weight=2.5)
    net = unfreeze(load_model("johnson", weights, "candy"))
    lossnet = build_lossnet(dataclasses.replace(cfg.loss_net, extra=("relu1_2", "relu2_2", "relu3_1")), weights)
    gen = torch.Generator().manual_seed(3)
    batch = ContentSampler(cfg.content, TINY).batch(2, gen)
    style = StyleSampler(cfg.style, TINY).batch(2, gen)
    with torch.no_grad():
        parts = objective(cfg)(net, lossnet, batch, style, cfg, True)
        plain = objective(cfg)(net, lossnet, batch, style, cfg, False)
    assert float(parts["total"]) == pytest.approx(float(parts["original"]) + 2.5 * float(parts["stroke"]), rel=1e-5)
    assert "stroke" not in plain and float(plain["total"]) == pytest.approx(float(parts["original"]), rel=1e-5)


def test_microast_checkpoint_round_trips_through_stylize(data, weights, client):
    """Fine-tuned MicroAST files in OUT/microast/ load with `stylize --weights OUT`, give the trained
    network, and a tampered file is refused by the hash check."""
    cfg = _cfg(data, weights, init=str(weights), lr=1e-2)
    result = train(cfg)
    out = Path(cfg.out)
    for path in method_files(cfg, out).values():
        assert path.is_file() and path.with_name(path.name + ".trained.json").is_file()
    loaded = load_model("microast", out)
    state = torch.load(out / STATE_FILE, weights_only=True)
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, state["model"][k], rtol=0, atol=0)
    original = load_model("microast", weights)
    assert any(not torch.equal(v, original.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert result.step == 1 and len(result.files) == 5
    ours = urst_dask.stylize(data["content"] / "c0.png", data["style"], data["root"] / "ft.zarr", method="microast",
                             weights=out, style_size=32, client=client)
    theirs = urst_dask.stylize(data["content"] / "c0.png", data["style"], data["root"] / "orig.zarr",
                               method="microast", weights=weights, style_size=32, client=client)
    a, b = (store.open_output(p).compute() for p in (ours, theirs))
    assert a.shape == b.shape == (40, 52, 3) and np.abs(a.astype(int) - b.astype(int)).max() > 0
    # control: change one byte of the decoder -> its digest no longer matches its record
    dec = method_files(cfg, out)["decoder"]
    sd = load_state_dict(out, microast_model.WEIGHTS[3], verify=False)
    sd["dec1.conv1.conv_layer.bias"] = sd["dec1.conv1.conv_layer.bias"] + 1
    torch.save(sd, dec)
    with pytest.raises(WeightsError, match="does not match"):
        load_model("microast", out)


def test_johnson_checkpoint_round_trips_through_stylize(data, weights, client):
    cfg = _cfg(data, weights, "johnson", init="candy")
    train(cfg)
    ckpt = Path(cfg.out) / "johnson" / "wave.pth"
    assert ckpt.is_file()
    loaded = load_model("johnson", Path(cfg.out), str(ckpt))
    assert loaded.style_name == "wave"
    state = torch.load(Path(cfg.out) / STATE_FILE, weights_only=True)
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, state["model"][k], rtol=0, atol=0)
    out = urst_dask.stylize(data["content"] / "c0.png", str(ckpt), data["root"] / "j.zarr", method="johnson",
                            weights=cfg.out, client=client)
    assert store.open_output(out).compute().std() > 1.0


@pytest.mark.slow
def test_cli_stylize_with_trained_weights(data, weights, capsys):
    """The command line, in a fresh local cluster (worker process), with `--weights OUT`."""
    cfg = _cfg(data, weights, init=str(weights))
    train(cfg)
    rc = main(["stylize", str(data["content"] / "c0.png"), str(data["style"]), "-o", str(data["root"] / "cli.zarr"),
               "--method", "microast", "--weights", cfg.out, "--style-size", "32", "--no-progress", "--workers", "1"])
    assert rc == 0, capsys.readouterr().err


def test_resume_continues_step_count_and_optimizer(data, weights):
    """1 step + resume to 2 equals 2 uninterrupted steps: same weights, Adam step count 2."""
    whole = train(_cfg(data, weights, "johnson", steps=2, out=str(data["root"] / "whole"), init="candy"))
    first = train(_cfg(data, weights, "johnson", steps=1, out=str(data["root"] / "split"), init="candy"))
    resumed = train(_cfg(data, weights, "johnson", steps=2, out=str(data["root"] / "split"), init="candy",
                         resume=True))
    assert (whole.step, first.step, resumed.first_step, resumed.step) == (2, 1, 1, 2)
    a = torch.load(data["root"] / "whole" / STATE_FILE, weights_only=True)
    b = torch.load(data["root"] / "split" / STATE_FILE, weights_only=True)
    assert a["step"] == b["step"] == 2
    steps = {int(s["step"]) for s in b["optimizer"]["state"].values()}
    assert steps == {2}
    for k in a["model"]:
        torch.testing.assert_close(b["model"][k], a["model"][k], rtol=1e-5, atol=1e-6)
    for key in a["optimizer"]["state"]:
        torch.testing.assert_close(b["optimizer"]["state"][key]["exp_avg_sq"], a["optimizer"]["state"][key]["exp_avg_sq"],
                                   rtol=1e-5, atol=1e-12)
    log = (data["root"] / "split" / "train-log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1, 2]


def _bad_cases(tmp: Path, data: dict[str, Path]) -> list[tuple[dict, type, str]]:
    (tmp / "empty").mkdir(exist_ok=True)
    (tmp / "mixed").mkdir(exist_ok=True)
    _png(tmp / "mixed" / "a.png", 40, 40, 0)
    (tmp / "mixed" / "notes.txt").write_text("not an image")
    (tmp / "fake").mkdir(exist_ok=True)
    (tmp / "fake" / "b.jpg").write_bytes(b"definitely not a jpeg")
    (tmp / "trunc").mkdir(exist_ok=True)  # an interrupted download: header fine, end missing
    _png(tmp / "trunc" / "a.png", 40, 40, 0)
    noise = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp / "trunc" / "b.jpg", quality=95)
    whole = (tmp / "trunc" / "b.jpg").read_bytes()
    (tmp / "trunc" / "b.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    (tmp / "trunc-png").mkdir(exist_ok=True)
    _png(tmp / "trunc-png" / "c.png", 40, 40, 1)
    whole = (tmp / "trunc-png" / "c.png").read_bytes()
    (tmp / "trunc-png" / "c.png").write_bytes(whole[:-20])
    wrong = tmp / "wrongnet.pth"
    torch.save({"encoder.0.weight": torch.zeros(3, 3, 1, 1)}, wrong)
    return [
        ({"content": str(tmp / "empty")}, InputImageError, "the folder is empty"),
        ({"content": str(tmp / "mixed")}, InputImageError, "notes.txt'.*not an image file"),
        ({"content": str(tmp / "fake")}, InputImageError, "b.jpg'.*not an image"),
        ({"content": str(tmp / "nowhere")}, InputImageError, "no such file"),
        ({"content": str(tmp / "trunc")}, InputImageError, "b.jpg': a truncated JPEG"),  # it stopped a run midway
        ({"content": str(tmp / "trunc-png")}, InputImageError, "c.png': a truncated PNG"),
        ({"method": "johnson", "style": str(data["styles"])}, InputImageError, "is a folder; johnson trains one"),
        ({"steps": 0}, ParameterError, "steps=0: must be >= 1"),
        ({"steps": -3}, ParameterError, "steps=-3: must be >= 1"),
        ({"steps": 1.5}, ParameterTypeError, "steps=1.5: must be an integer"),
        ({"batch_size": 0}, ParameterError, "batch_size=0"),
        ({"stroke_weight": -1.0}, ParameterError, "stroke_weight=-1.0"),
        ({"method": "adain"}, ParameterError, "method='adain': must be one of microast, johnson"),
        ({"resume": True, "out": str(tmp / "none")}, OutputError, "nothing to resume"),
        ({"resume": "no"}, ParameterTypeError, "resume='no': must be a bool"),  # "no" was truthy: it resumed
        ({"loss_net": ("vgg19", "relu4_1")}, ParameterError, "reaches relu3_1 only"),
        ({"init": str(data["style"])}, WeightsError, "microast starts from a weights folder"),
        ({"method": "johnson", "init": "nonexist"}, ParameterError, "^init='nonexist': johnson bakes one style"),
        # a checkpoint of another network: one line, as stylize gives (it was torch's traceback)
        ({"method": "johnson", "init": str(wrong)}, WeightsError, "does not fit the johnson network"),
        ({"out": str(tmp / "mixed" / "a.png")}, OutputError, "a.png': cannot create the folder"),  # was a traceback
        # the checkpoints landed among the photographs, and the next run refused the folder
        ({"out": str(data["content"])}, OutputError, "is the content folder .*: choose a folder outside it"),
        ({"out": str(data["content"] / "run")}, OutputError, "is inside the content folder"),
    ]


def test_bad_input_table(data, weights, tmp_path):
    for change, error, message in _bad_cases(tmp_path, data):
        with pytest.raises(error, match=message) as info:
            base = _cfg(data, weights)
            kw = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
            if change.get("method") == "johnson":
                kw["style"] = str(data["style"])
            if isinstance(change.get("loss_net"), tuple):
                change = {**change, "loss_net": LossNetSpec(*change["loss_net"])}
            train(TrainConfig(**{**kw, **change}))
        assert isinstance(info.value, UrstError) and "\n" not in str(info.value), change


def test_existing_run_needs_resume(data, weights):
    cfg = _cfg(data, weights, "johnson", init="candy")
    train(cfg)
    with pytest.raises(OutputError, match="pass --resume"):
        train(cfg)
    done = train(dataclasses.replace(cfg, resume=True))  # already at its last step: nothing to do
    assert done.first_step == done.step == 1


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "steps=0: must be >= 1"),
    (["--content", "EMPTY"], "the folder is empty"),
    (["--method", "johnson", "--style", "STYLES"], "is a folder; johnson trains one network per style"),
])
def test_cli_errors_are_one_line(data, weights, capsys, argv, message):
    (data["root"] / "empty").mkdir()
    subst = {"EMPTY": str(data["root"] / "empty"), "STYLES": str(data["styles"])}
    base = {"--method": "microast", "--content": str(data["content"]), "--style": str(data["style"]), "--steps": "1",
            "--out": str(data["root"] / "cli")}
    for flag, value in zip(argv[::2], argv[1::2]):
        base[flag] = subst.get(value, value)
    rc = main(["train", *[x for kv in base.items() for x in kv], "--weights", str(weights)])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_cli_trains_and_reports(data, weights, capsys):
    rc = main(["train", "--method", "johnson", "--content", str(data["content"]), "--style", str(data["style"]),
               "--steps", "1", "--out", str(data["root"] / "cli-ok"), "--batch-size", "1", "--init", "candy",
               "--weights", str(weights), "--device", "cpu", "--stroke-weight", "0"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "step 1/1" in captured.err and "stroke" not in captured.err.split("step 1/1")[1]
    assert captured.out.startswith("wrote ")


def test_cli_quiet_prints_only_the_wrote_line(data, weights, capsys):
    """-q: warnings, errors and the final 'wrote' line only (every step line was printed)."""
    rc = main(["train", "-q", "--method", "johnson", "--content", str(data["content"]), "--style", str(data["style"]),
               "--steps", "1", "-o", str(data["root"] / "cli-q"), "--batch-size", "1", "--init", "candy",
               "--weights", str(weights), "--device", "cpu", "--stroke-weight", "0", "--log-every", "1"])
    captured = capsys.readouterr()
    assert rc == 0 and captured.err == "" and captured.out.startswith("wrote "), captured


def test_resume_keeps_the_runs_settings_and_records_its_init(data, weights):
    """A resume as the README shows it (no --init) recorded 'init': null; one with another
    style or stroke weight went on silently, training towards something else."""
    out = str(data["root"] / "same-run")
    train(_cfg(data, weights, "johnson", steps=1, out=out, init="candy", stroke_weight=0.0, batch_size=1))
    with pytest.raises(OutputError, match=r"--resume with other settings than the run it continues: stroke_weight "
                       r"1.0 \(the run's: 0.0\)"):
        train(_cfg(data, weights, "johnson", steps=2, out=out, stroke_weight=1.0, batch_size=1, resume=True))
    result = train(_cfg(data, weights, "johnson", steps=2, out=out, stroke_weight=0.0, batch_size=1, resume=True))
    records = [json.loads(p.read_text()) for p in Path(out).rglob("*.trained.json")]
    assert result.step == 2 and records and all(r["init"] == "candy" and r["step"] == 2 for r in records)


def test_a_resumed_run_logs_each_step_once(tmp_path):
    """Steps logged after the last checkpoint are trained again on resume: their old lines go
    (step 3 appeared twice after an interrupt and a resume)."""
    from urst_dask.io.checkpoints import append_jsonl, trim_jsonl

    log = tmp_path / "train-log.jsonl"
    for step in (1, 2, 3):
        append_jsonl(log, {"step": step, "total": 1.0})
    trim_jsonl(log, 2)
    append_jsonl(log, {"step": 3, "total": 0.5})
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]
