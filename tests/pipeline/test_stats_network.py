"""Weight files by their contents: given statistics carry the digest of the files that collected
them (read back from a store), and a run of other weights refuses them, while the same weights
named another way take them; a lazy result of a checkpoint rewritten in place has new keys."""

from __future__ import annotations

import numpy as np
import pytest

import urst_dask
from urst_dask.errors import ParameterError
from urst_dask.io import store
from urst_dask.io.weights import files_record, network_digest
from urst_dask.models import method_entry
from urst_dask.testing import random_image


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return random_image(64, 80, seed=11)


def test_read_stats_carries_the_digest_of_the_runs_weights(tmp_path, weights, client, image):
    out = urst_dask.stylize(image, "candy", tmp_path / "candy.zarr", method="johnson", weights=weights,
                            client=client, stride=64)
    stats = store.read_stats(out)
    assert stats.network == network_digest(files_record(weights, method_entry("johnson").weights("candy")))
    assert stats.with_network(None) == stats  # the values decide equality and the token, not the mark


@pytest.mark.parametrize("as_object", [True, False], ids=["object", "store path"])
def test_another_johnson_styles_statistics_are_refused(tmp_path, weights, client, image, as_object):
    """Every johnson style records the same points and shapes: candy's statistics passed every
    check, and a mosaic run with them wrote a black picture marked complete."""
    kw = dict(method="johnson", weights=weights, client=client, stride=64)
    candy = urst_dask.stylize(image, "candy", tmp_path / "candy.zarr", **kw)
    given = store.read_stats(candy) if as_object else candy
    where = "stats" if as_object else f"stats={str(candy)!r}"
    why = ("collected by other weights than this run's johnson 'mosaic'" if as_object
           else "collected with variant 'candy', not 'mosaic'")
    with pytest.raises(ParameterError, match=f"^{where}: {why} \\(weight files sha256 [0-9a-f]{{12}}, not "
                                             "[0-9a-f]{12}\\); statistics serve the network and variant"):
        urst_dask.stylize(image, "mosaic", tmp_path / "mosaic.zarr", stats=given, **kw)
    assert not (tmp_path / "mosaic.zarr").exists()


def test_the_same_weights_under_another_variant_name_take_them(tmp_path, weights, client, image, style_image):
    """wct's default variant is its top level 3: statistics of a run without a variant serve a
    run with variant '3' (the same weight files), where the store's variant string refused them."""
    kw = dict(method="wct", weights=weights, client=client, style_size=64, thumb_size=64, stride=64)
    plain = urst_dask.stylize(image, style_image, tmp_path / "plain.zarr", **kw)
    again = urst_dask.stylize(image, style_image, tmp_path / "three.zarr", variant="3", stats=plain, **kw)
    np.testing.assert_array_equal(store.open_output(again).compute(), store.open_output(plain).compute())


def test_a_checkpoint_rewritten_in_place_gives_new_keys(tmp_path, weights, client, image):
    """A persisted ``stylize_array`` of a checkpoint, then the checkpoint retrained at the same
    path: the new graph's keys were the old ones, and the cluster handed back the old pixels."""
    import shutil

    from distributed import wait

    ckpt = tmp_path / "mine.pth"
    shutil.copyfile(weights / "johnson" / "candy.pth", ckpt)
    kw = dict(method="johnson", weights=weights, stride=64)
    before = client.persist(urst_dask.stylize_array(image, str(ckpt), **kw))
    wait(before)
    shutil.copyfile(weights / "johnson" / "mosaic.pth", ckpt)
    after = urst_dask.stylize_array(image, str(ckpt), **kw)
    assert after.name != before.name
    mosaic = client.compute(urst_dask.stylize_array(image, "mosaic", **kw)).result()
    np.testing.assert_array_equal(client.compute(after).result(), mosaic)
    assert not np.array_equal(client.compute(before).result(), mosaic)  # the persisted candy pixels, kept


@pytest.mark.parametrize("change", [{"style": "other"}, {"alpha": 0.5}, {"style_size": 48}])
def test_statistics_of_another_style_are_refused_where_they_depend_on_it(tmp_path, weights, client, image, change):
    """wct's levels past the first see the stylized output of the ones before: statistics of a
    run with another style (or alpha, or style size) gave a 6 dB picture, accepted silently."""
    from urst_dask.synthetic import demo_style

    kw = dict(method="wct", weights=weights, client=client, style_size=64, thumb_size=64, stride=64)
    first = urst_dask.stylize(image, demo_style(64, seed=1), tmp_path / "first.zarr", **kw)
    style = demo_style(64, seed=2) if change.get("style") else demo_style(64, seed=1)
    kw.update({k: v for k, v in change.items() if k != "style"})
    for given in (first, store.read_stats(first)):
        with pytest.raises(ParameterError, match="collected with another style, alpha or style_size than this "
                                                 "run's; wct's statistics past its first normalization point"):
            urst_dask.stylize(image, style, tmp_path / "second.zarr", stats=given, **kw)
    assert not (tmp_path / "second.zarr").exists()


def test_content_only_statistics_serve_any_style(tmp_path, client, image):
    """AdaIN's one point sees the content's features alone: statistics of a run with another
    style are taken (random weights in the official layout; the check is the same)."""
    from urst_dask.bench.random_weights import write_random
    from urst_dask.models import method_entry
    from urst_dask.synthetic import demo_style

    w = write_random("adain", tmp_path / "w")
    kw = dict(method="adain", weights=w, client=client, style_size=64, thumb_size=64, stride=64)
    first = urst_dask.stylize(image, demo_style(64, seed=1), tmp_path / "first.zarr", **kw)
    assert store.read_stats(first).conditions is not None
    urst_dask.stylize(image, demo_style(64, seed=2), tmp_path / "second.zarr", stats=first, alpha=0.5, **kw)
    assert store.read_attrs(tmp_path / "second.zarr")["status"] == "complete"
    assert method_entry("linearwct").info.content_only_stats
    assert not method_entry("wct16x").info.content_only_stats and not method_entry("microast").info.content_only_stats


def test_reuse_that_leaves_the_statistics_unchanged_is_accepted(tmp_path, weights, client, image):
    """Colour preservation acts after the network, and a baked style's statistics depend on its
    weights alone (Johnson's alpha blends after the network): such reuse was refused."""
    from urst_dask.synthetic import demo_style

    kw = dict(method="wct", weights=weights, client=client, style_size=64, thumb_size=64, stride=64)
    first = urst_dask.stylize(image, demo_style(64, seed=1), tmp_path / "w1.zarr", **kw)
    urst_dask.stylize(image, demo_style(64, seed=1), tmp_path / "w2.zarr", stats=first, preserve_color=True, **kw)
    jkw = dict(method="johnson", weights=weights, client=client, stride=64)
    candy = urst_dask.stylize(image, "candy", tmp_path / "j1.zarr", **jkw)
    for name, extra in (("j2", {"alpha": 0.5}), ("j3", {"style_size": 512}), ("j4", {"preserve_color": True})):
        urst_dask.stylize(image, "candy", tmp_path / f"{name}.zarr", stats=candy, **extra, **jkw)
    urst_dask.stylize(image, str(weights / "johnson" / "candy.pth"), tmp_path / "j5.zarr", stats=candy, **jkw)
    assert all(store.read_attrs(tmp_path / f"{n}.zarr")["status"] == "complete" for n in ("w2", "j2", "j3", "j4", "j5"))


def test_the_same_style_as_a_file_and_as_an_array_shares_statistics(tmp_path, weights, client, image):
    """The style was compared by the file's sha256 for a path and by the pixels' for an array:
    the same picture given both ways was refused as another style.  A store written before the
    pixels' digest was recorded (only the file's) still serves a run of the same file."""
    from PIL import Image

    from urst_dask.synthetic import demo_style

    pixels = demo_style(64, seed=1)
    path = tmp_path / "style.png"
    Image.fromarray(pixels).save(path)
    kw = dict(method="wct", weights=weights, client=client, style_size=64, thumb_size=64, stride=64)
    by_file = urst_dask.stylize(image, str(path), tmp_path / "file.zarr", **kw)
    by_array = urst_dask.stylize(image, pixels, tmp_path / "array.zarr", stats=by_file, **kw)
    urst_dask.stylize(image, str(path), tmp_path / "file2.zarr", stats=by_array, **kw)
    np.testing.assert_array_equal(store.open_output(by_array).compute(), store.open_output(by_file).compute())
    style = store.read_attrs(by_file)["style"]
    assert style["pixels_sha256"] != style["sha256"]  # the file's bytes are not its pixels

    import dataclasses

    from urst_dask.stats import style_conditions

    by_file_only = style_conditions({k: v for k, v in style.items() if k != "pixels_sha256"},
                                    store.read_attrs(by_file)["options"])
    old = dataclasses.replace(store.read_stats(by_file), conditions=by_file_only)
    urst_dask.stylize(image, str(path), tmp_path / "file3.zarr", stats=old, **kw)
    with pytest.raises(ParameterError, match="collected with another style"):
        urst_dask.stylize(image, demo_style(64, seed=2), tmp_path / "other.zarr", stats=old, **kw)
