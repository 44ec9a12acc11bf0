"""The registered ``m2pn`` method: weights loading, shapes, batching, frozen memory, errors, engine use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import BackendUnavailableError, FusionError, WeightsError
from engine.fusion_engine import FusionEngine
from engine.m2pn import M2PN, M2PNConfig, save_weights
from engine.m2pn.method import M2PNMethod, pad_to_multiple
from engine.registry import available_methods, create_method

TINY = dict(
    stem_channels=4, dense_growth=4, dense_layers=2, residual_channels=4, decoder_channels=(8, 8, 4),
    prompt_dim=16, graph_heads=2, mgf_heads=2, memory_slots=8,
)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny_m2pn.pt"
    save_weights(M2PN(M2PNConfig(**TINY)), path, meta={"note": "random tiny model for tests"})
    return path


@pytest.fixture
def method(tiny_weights):
    return create_method("m2pn", weights=str(tiny_weights))


def test_registered_with_description():
    assert "m2pn" in available_methods()
    assert available_methods()["m2pn"]


@pytest.mark.parametrize("size", [(37, 53), (2, 2), (64, 48)])
def test_fuse_keeps_size_dtype_and_range(method, rng, size):
    ir = rng.random(size, dtype=np.float32)
    vi = rng.random(size, dtype=np.float32)
    out = method.fuse(ir, vi)
    assert out.shape == size
    assert out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_fuse_batch_equals_single_fusions(method, rng):
    ir = rng.random((3, 29, 41), dtype=np.float32)
    vi = rng.random((3, 29, 41), dtype=np.float32)
    batch = method.fuse_batch(ir, vi)
    assert batch.shape == (3, 29, 41)
    singles = np.stack([method.fuse(a, b) for a, b in zip(ir, vi)])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_output_depends_on_both_inputs(method, rng):
    ir, vi = rng.random((2, 24, 24), dtype=np.float32)
    base = method.fuse(ir, vi)
    assert not np.allclose(base, method.fuse(1.0 - ir, vi))
    assert not np.allclose(base, method.fuse(ir, 1.0 - vi))


def test_memory_and_weights_stay_frozen(method, rng):
    before = {k: v.clone() for k, v in method.model.state_dict().items()}
    assert not method.model.training
    assert all(not p.requires_grad for p in method.model.parameters())
    ir, vi = rng.random((2, 4, 33, 35), dtype=np.float32)
    first = method.fuse_batch(ir, vi)
    second = method.fuse_batch(ir, vi)
    np.testing.assert_array_equal(first, second)
    after = method.model.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), f"{key} changed during inference"
    assert int(method.model.dmb.slot_updates.sum()) == 0


def test_loaded_model_reproduces_the_saved_network(tiny_weights, rng):
    torch.manual_seed(0)
    reference = M2PN(M2PNConfig(**TINY)).eval()  # same seed -> same weights as the fixture
    ir, vi = rng.random((2, 19, 23), dtype=np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(ir)[None, None], torch.from_numpy(vi)[None, None]).fused[0, 0].numpy()
    got = M2PNMethod(weights=tiny_weights).fuse(ir, vi)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_missing_weights_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "m2pn.pt"
    with pytest.raises(WeightsError, match="nowhere"):
        create_method("m2pn", weights=str(missing))


def test_garbage_weights_file_names_the_path(tmp_path):
    garbage = tmp_path / "garbage_weights.pt"
    garbage.write_bytes(b"this is not a torch file" * 10)
    with pytest.raises(WeightsError, match="garbage_weights.pt"):
        create_method("m2pn", weights=str(garbage))


def test_backend_option(tiny_weights):
    assert create_method("m2pn", weights=str(tiny_weights), backend="cpu").backend.startswith("cpu (")
    with pytest.raises(BackendUnavailableError, match="backend"):
        create_method("m2pn", weights=str(tiny_weights), backend="warp-drive")


def test_pad_to_multiple_reflects_and_reports_size():
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).view(1, 2, 5, 7)
    padded, h, w = pad_to_multiple(x, 4)
    assert padded.shape == (1, 2, 8, 8) and (h, w) == (5, 7)
    assert torch.equal(padded[..., :5, :7], x)
    assert torch.equal(padded[..., 5, :7], x[..., 3, :])  # reflection, not zeros
    same, _, _ = pad_to_multiple(x, 1)
    assert same is x


def test_padding_path_crops_back(tiny_weights, rng):
    m = M2PNMethod(weights=tiny_weights)
    m.size_multiple = 8  # as a down-sampling network would need
    ir, vi = rng.random((2, 21, 30), dtype=np.float32)
    assert m.fuse(ir, vi).shape == (21, 30)


def test_fusion_engine_with_colour_visible(tiny_weights, rng):
    ir = (rng.random((31, 45)) * 255).astype(np.uint8)
    vis = (rng.random((31, 45, 3)) * 255).astype(np.uint8)
    with FusionEngine("m2pn", weights=str(tiny_weights)) as engine:
        out = engine.fuse(ir, vis)
    assert out.shape == (31, 45, 3) and out.dtype == np.uint8


# ---- tooling: measurements and the TNO montage --------------------------------------------------
def test_flop_count_follows_the_two_flops_per_mac_convention():
    from engine.m2pn.measure import count_flops, measure

    torch.manual_seed(0)
    model = M2PN(M2PNConfig(**TINY)).eval()
    total, per_module = count_flops(model, 16, 16)
    # DenseEncoder: 3x3 convs 1->4, 4->4, 8->4 over IR and VIS (batch of 2), 16x16 pixels, 2 FLOPs per MAC
    macs_per_pixel = 9 * (1 * 4 + 4 * 4 + 8 * 4)
    assert per_module["encoder"] == 2 * macs_per_pixel * 16 * 16 * 2
    assert per_module["pgms"] > 0 and total >= sum(per_module.values()) * 0.999
    report = measure(model, timing=False)
    assert report["parameters"] == model.count_parameters() == sum(p.numel() for p in model.parameters())
    assert report["gmacs_256"] == pytest.approx(report["gflops_256"] / 2)
    assert report["flops_256"] > total  # 256x256 costs more than 16x16


def test_cpu_timing_reports_median_of_runs():
    from engine.m2pn.measure import time_cpu_ms

    model = M2PN(M2PNConfig(**TINY)).eval()
    t = time_cpu_ms(model, 24, 32, threads=1, warmup=1, repeats=3)
    assert t["repeats"] == 3 and 0 < t["min_ms"] <= t["median_ms"]


def test_montage_grid_and_size_cap(tiny_weights, tmp_path, rng):
    import cv2

    from engine.m2pn.montage import build_montage, encode_png_under

    for side in ("ir", "vi"):
        (tmp_path / side).mkdir()
    for i, (h, w) in enumerate([(40, 60), (50, 50), (30, 45)]):
        cv2.imwrite(str(tmp_path / "ir" / f"{i}.png"), (rng.random((h, w)) * 255).astype(np.uint8))
        cv2.imwrite(str(tmp_path / "vi" / f"{i}.png"), (rng.random((h, w, 3)) * 255).astype(np.uint8))
    montage, count = build_montage(tmp_path, str(tiny_weights), tile_height=32, columns=2)
    assert count == 3 and montage.dtype == np.uint8 and montage.shape[2] == 3
    # 2 rows of 32 px tiles (+4 px gaps) under a 22 px header
    assert montage.shape[0] == 22 + 2 * (32 + 4)
    small, png = encode_png_under(montage, 4000)
    assert len(png) <= 4000 and small.shape[0] < montage.shape[0]
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == small.shape


def test_close_is_idempotent_and_final(method, rng):
    method.close()
    method.close()
    with pytest.raises(FusionError, match="closed"):
        method.fuse(*rng.random((2, 8, 8), dtype=np.float32))


@pytest.mark.parametrize("threads", [0, "many"])
def test_bad_threads_option_is_a_clear_error(tiny_weights, threads):
    with pytest.raises(FusionError, match="threads"):
        create_method("m2pn", weights=str(tiny_weights), threads=threads)


def test_memory_report_describes_retrieval_without_writing_the_bank():
    import torch

    from engine.m2pn import M2PN, M2PNConfig
    from engine.m2pn.memory_report import memory_usage

    torch.manual_seed(0)
    model = M2PN(M2PNConfig(stem_channels=4, dense_growth=4, residual_channels=4, decoder_channels=[8, 8, 4],
                            prompt_dim=16, memory_slots=10))
    with torch.no_grad():
        model.dmb.slot_updates[3] = 7  # as if training had written slot 3 seven times
        model.dmb.memory[3] = torch.randn(16)
        model.dmb.slot_written[3] = True
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ir, vi = torch.rand(4, 1, 24, 24), torch.rand(4, 1, 24, 24)
    report = memory_usage(model, ir, vi)
    assert report["pairs"] == 4 and report["slots"] == 10
    assert report["slots_written"] == 1 and report["writes"] == 7
    assert -1.0 <= report["theta_f_cosine_min"] <= report["theta_f_cosine_mean"] <= 1.0 + 1e-6
    assert report["top_slot_weight_mean"] == pytest.approx(1.0)  # one stored experience takes all the weight
    assert report["retrieved_slots"] == [3] and report["distinct_top_slots"] == 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
