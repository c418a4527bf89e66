import pickle

import numpy as np
import pytest
import torch

from urst_dask.stats import NormStats, RecordingSource


def _stats():
    return NormStats.build("m", {"b": {"mean": np.arange(3.0), "std": np.ones(3)}, "a": {"whiten": np.eye(2)}})


def test_roundtrip_flat_and_pickle():
    s = _stats()
    assert NormStats.from_flat("m", s.to_flat()) == s
    assert pickle.loads(pickle.dumps(s)) == s
    assert s.points() == ["b", "a"]  # forward order kept


def test_immutable_arrays():
    s = _stats()
    with pytest.raises(ValueError):
        s["b"]["mean"][0] = 5.0
    with pytest.raises(AttributeError):
        s.method = "x"  # type: ignore[misc]


def test_token_changes_with_content():
    a = _stats()
    b = NormStats.build("m", {"b": {"mean": np.arange(3.0) + 1e-9, "std": np.ones(3)}, "a": {"whiten": np.eye(2)}})
    assert a.token() != b.token()
    assert a.token() == _stats().token()


def test_recording_source_refuses_a_second_visit():
    rec = RecordingSource()
    f = torch.zeros(1, 2, 3, 3)
    rec.get("p", f, lambda t: {"mean": t.mean(dim=(2, 3))[0]})
    with pytest.raises(RuntimeError, match="visited twice"):
        rec.get("p", f, lambda t: {"mean": t.mean(dim=(2, 3))[0]})


def test_missing_point_message():
    with pytest.raises(KeyError, match="has no point 'zz'"):
        _stats()["zz"]
