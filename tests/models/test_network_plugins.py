"""A network published through the ``urst_dask.networks`` entry-point group is found by name in
every process - the CLI's and each Dask worker's - with no preload and no registration call."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image

from urst_dask.errors import ParameterError
from urst_dask.models import ModelInfo, Network
from urst_dask.models.registry import Registry
from urst_dask.testing import REPO

PLUGIN = textwrap.dedent('''
    import torch
    from torch import nn

    from urst_dask.models import ModelInfo, Network, StyleModel
    from urst_dask.models.layers import in_stats
    from urst_dask.stats import StyleCode

    INFO = ModelInfo("plugnet", size_multiple=1, receptive_field=1, takes_style_image=True, supports_alpha=True)


    class Invert(StyleModel):
        def __init__(self):
            super().__init__()
            self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)
            self.info = INFO

        def prepare_style(self, style):
            return StyleCode.build("plugnet", {})

        def run(self, x, style, source, alpha):
            source.get("in", x, in_stats)  # one TIN point, so the thumbnail pass records something
            return 1.0 - x


    def build(state_dicts, variant=None):
        return Invert().freeze()


    NETWORK = Network(INFO, "test plugin: inverts the image", build)
    NOT_A_NETWORK = object()
''')


def _install(site: Path, target: str = "plugnet_mod:NETWORK") -> None:
    (site / "plugnet_mod.py").write_text(PLUGIN)
    info = site / "plugnet-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugnet\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[urst_dask.networks]\nplugnet = {target}\n")


def _run(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "urst_dask", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def test_entry_point_network_runs_on_worker_processes(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _install(site)
    rng = np.random.default_rng(0)
    content = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(content).save(tmp_path / "c.png")
    Image.fromarray(content[::-1]).save(tmp_path / "s.png")

    listed = _run(site, "methods", cwd=tmp_path)
    assert listed.returncode == 0 and "plugnet" in listed.stdout and "inverts the image" in listed.stdout, listed

    # --workers 1: a LocalCluster with a separate worker process, which finds the plugin by itself
    done = _run(site, "stylize", "c.png", "s.png", "-o", "out.zarr", "--method", "plugnet", "--workers", "1",
                "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = np.moveaxis(np.asarray(zarr.open_group(str(tmp_path / "out.zarr"), mode="r")["0"]), 0, -1)  # CYX -> YXC
    assert out.shape == content.shape
    assert np.abs(out.astype(int) - (255 - content.astype(int))).max() <= 1


def test_entry_point_that_is_not_a_network_is_one_clear_error(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _install(site, target="plugnet_mod:NOT_A_NETWORK")
    proc = _run(site, "stylize", "c.png", "s.png", "-o", "out.zarr", "--method", "plugnet", cwd=tmp_path)
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(err) == 1, proc.stderr
    assert "entry point 'plugnet' (plugnet_mod:NOT_A_NETWORK): is a object, not a urst_dask.models.Network" in err[0]


def _build(state_dicts, variant=None):  # pragma: no cover - never called
    raise AssertionError


@pytest.mark.parametrize("bad, fragment", [
    (dict(info="x", summary="s", build=_build), "info='x': must be a ModelInfo"),
    (dict(info=ModelInfo("n", 1, 1, True, True), summary="s", build=3), "build=3: must be callable"),
])
def test_network_contract_is_checked(bad, fragment):
    with pytest.raises(ParameterError, match=fragment):
        Network(**bad)


def test_a_built_in_name_cannot_be_taken():
    """A network registered as 'johnson' would inherit the built-in's checked backends and
    bf16 choice (auto would compile and run it in bf16): refused."""
    from urst_dask.models import register_method

    with pytest.raises(ParameterError, match="network name 'johnson': is a built-in network"):
        register_method(Network(ModelInfo("johnson", 1, 1, True, True), "mine", lambda sd, v: None))


def test_unknown_name_lists_every_network():
    reg = Registry((Network(ModelInfo("a", 1, 1, True, True), "a", _build),
                    Network(ModelInfo("b", 1, 1, True, True), "b", _build)))
    with pytest.raises(ParameterError) as info:
        reg.get("nope")
    assert str(info.value).startswith("method='nope': must be one of a, b")
