"""The committed M2PN weights held to account on real pairs: they load as their sidecar describes, fuse
better than plain averaging on edge transfer (Qabf) and contrast (SD), and keep hot thermal targets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.evaluate import fused_gray_levels, load_pairs
from engine.fusion_engine import FusionEngine
from engine.m2pn.weights import DEFAULT_WEIGHTS, load_model, sidecar_path
from engine.metrics import compute_all

pytestmark = pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason=f"no committed weights at {DEFAULT_WEIGHTS}")


def test_weights_load_with_the_config_their_sidecar_states():
    sidecar = json.loads(sidecar_path(DEFAULT_WEIGHTS).read_text())
    model, meta = load_model(DEFAULT_WEIGHTS)
    stated = dict(sidecar["config"])
    actual = model.config.to_dict()
    assert {k: actual[k] for k in stated} == stated
    assert sidecar["bytes"] == DEFAULT_WEIGHTS.stat().st_size
    assert meta["steps"] == sidecar["steps"] > 0 and sidecar["command"].startswith("python -m engine.train")
    assert not model.training and not any(p.requires_grad for p in model.parameters())


@pytest.fixture(scope="module")
def real_pairs(shared_data):
    problems: list[str] = []
    tno = load_pairs(shared_data / "tno", 3, problems)
    msrs = load_pairs(shared_data / "msrs" / "test", 2, problems)
    assert not problems, problems
    return tno + msrs


@pytest.mark.data
def test_beats_averaging_on_qabf_and_sd_and_keeps_hot_targets(real_pairs):
    network, average = FusionEngine("m2pn", threads=2), FusionEngine("average")
    for pair in real_pairs:
        fused = fused_gray_levels(network.fuse(pair.ir, pair.vi))
        mean = fused_gray_levels(average.fuse(pair.ir, pair.vi))
        ours, base = (compute_all(pair.ir_gray, pair.vi_gray, f) for f in (fused, mean))
        assert ours["Qabf"] > base["Qabf"], pair.name
        assert ours["SD"] > base["SD"], pair.name
        # hot targets: where the thermal image is in its top 1 %, the fused image stays at least as bright as
        # the average of the two sources there, and well above the fused image's own median
        hot = pair.ir_gray >= np.percentile(pair.ir_gray, 99)
        assert fused[hot].mean() >= 0.95 * mean[hot].mean(), pair.name
        assert fused[hot].mean() > np.median(fused) + 20, pair.name
    network.close()
    average.close()
