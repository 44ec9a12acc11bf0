"""GPU paths against the CPU path: padding invariance on odd sizes (runs everywhere) and CUDA / TensorRT
agreement on a tiny M2PN (skipped, with the reason, where there is no CUDA device or no torch-tensorrt)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from engine.backends import create_runner
from engine.backends.tensorrt import TensorRTRunner
from engine.m2pn import M2PN, M2PNConfig
from engine.realtime.method import M2PNRealtimeMethod
from tests.conftest import requires_cuda

TINY = dict(stem_channels=4, dense_growth=4, dense_layers=1, residual_channels=4, decoder_channels=(8, 8, 4),
            prompt_dim=16, graph_heads=2, mgf_heads=2, memory_slots=8)
ODD_SIZES = [(37, 53), (90, 120), (91, 121), (45, 80)]
requires_trt = pytest.mark.skipif(importlib.util.find_spec("torch_tensorrt") is None or not torch.cuda.is_available(),
                                  reason="needs torch-tensorrt and a CUDA device; not on this machine")


@pytest.fixture(scope="module")
def tiny_model() -> M2PN:
    torch.manual_seed(0)
    return M2PN(M2PNConfig(**TINY)).eval()


def pair(h, w, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, h, w, generator=g), torch.rand(1, 1, h, w, generator=g)


def eager(model, ir, vi):
    with torch.inference_mode():
        return model(ir, vi).fused


class ExactShapeCpuCompiler:
    """Builds "engines" that are the eager module on the CPU, so the TensorRT runner's shape handling (what
    size the engine is built for, padding, cropping) runs here; only the compiler itself is replaced."""

    name = "eager-cpu"

    def __init__(self) -> None:
        self.shapes = []

    def versions(self):
        return {"torch": torch.__version__}

    def compile(self, module, spec, precision):
        self.shapes.append(spec.key())
        return module

    def save(self, compiled, path, spec, precision):
        torch.save(compiled.state_dict(), path)

    def load(self, path):
        raise AssertionError("each shape is built once in these tests")


@pytest.mark.parametrize("h,w", ODD_SIZES)
def test_tensorrt_runner_builds_for_the_exact_size_so_the_output_equals_the_cpu(tiny_model, tmp_path, h, w):
    compiler = ExactShapeCpuCompiler()
    runner = TensorRTRunner(tiny_model, "fp32", tmp_path, compiler=compiler)
    ir, vi = pair(h, w)
    out = runner(ir, vi)
    assert compiler.shapes == [f"1x1x{h}x{w}"]  # no padding: the engine is built for the frame's own size
    if not torch.cuda.is_available():
        assert torch.equal(out, eager(tiny_model, ir, vi))


def test_padding_would_change_the_output_which_is_why_runners_do_not_pad(tiny_model, tmp_path):
    # M2PN's prompts pool over the whole image, so padding 90x120 to 96x128 changes every pixel a little.
    ir, vi = pair(90, 120)
    padded = TensorRTRunner(tiny_model, "fp32", tmp_path, multiple=32, compiler=ExactShapeCpuCompiler())
    if torch.cuda.is_available():
        pytest.skip("the padded engine runs on the GPU here; the point is made on the CPU")
    assert (padded(ir, vi) - eager(tiny_model, ir, vi)).abs().max() > 1e-4


@pytest.mark.parametrize("h,w", ODD_SIZES)
def test_onnx_cpu_runner_matches_eager_on_odd_sizes(tiny_model, tmp_path, h, w):
    runner = create_runner(tiny_model, "cpu", cache_dir=tmp_path, cpu_runtime="auto")
    ir, vi = pair(h, w)
    assert (runner(ir, vi) - eager(tiny_model, ir, vi)).abs().max() < 1e-4


def test_m2pn_rt_same_result_on_every_cpu_runtime_at_an_odd_frame_size(tiny_model, tmp_path, rng):
    ir = rng.random((1, 237, 311)).astype(np.float32)
    vi = rng.random((1, 237, 311)).astype(np.float32)
    outs = [M2PNRealtimeMethod(model=tiny_model, backend="cpu", cpu_runtime=rt, cache_dir=tmp_path).fuse_batch(ir, vi)
            for rt in ("torch", "onnxruntime")]
    assert np.abs(outs[0] - outs[1]).max() < 1e-4


# ---- on a CUDA device ------------------------------------------------------------------------------------
@requires_cuda
@pytest.mark.parametrize("h,w", ODD_SIZES)
def test_cuda_runner_agrees_with_the_cpu(tiny_model, h, w):
    from engine.backends.cuda import CudaRunner

    ir, vi = pair(h, w)
    expected = eager(tiny_model, ir, vi)
    for precision, tol in (("fp32", 1e-3), ("fp16", 2e-2)):
        out = CudaRunner(tiny_model, precision, warmup=1, warmup_shape=(h, w))(ir, vi)
        assert out.shape == expected.shape and (out - expected).abs().max() < tol, precision


@requires_trt
@pytest.mark.parametrize("h,w", [(90, 120), (91, 121)])
def test_tensorrt_runner_agrees_with_the_cpu(tiny_model, tmp_path, h, w):
    ir, vi = pair(h, w)
    expected = eager(tiny_model, ir, vi)
    for precision, tol in (("fp32", 1e-3), ("fp16", 2e-2)):
        runner = TensorRTRunner(tiny_model, precision, tmp_path / precision)
        out = runner(ir, vi)
        assert out.shape == expected.shape and (out - expected).abs().max() < tol, precision
        again = TensorRTRunner(tiny_model, precision, tmp_path / precision)(ir, vi)  # from the engine cache
        assert again.shape == expected.shape and (again - expected).abs().max() < tol, precision
