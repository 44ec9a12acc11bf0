"""engine.backends: selection and fallback logging, cache keys, cache hit/miss/rebuild, shape padding."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from engine.backends import (
    CacheKey, EngineCache, ShapeSpec, TorchCpuRunner, create_runner, model_hash, pad_to_multiple, padded_size,
)
from engine.backends.tensorrt import EngineSet
from engine.errors import BackendUnavailableError
from engine.m2pn import M2PN, M2PNConfig
from tests.conftest import requires_cuda

TINY = dict(stem_channels=4, dense_growth=4, dense_layers=1, residual_channels=4, decoder_channels=(8, 8, 4),
            prompt_dim=16, graph_heads=2, mgf_heads=2, memory_slots=8)


@pytest.fixture(scope="module")
def tiny_model() -> M2PN:
    torch.manual_seed(0)
    return M2PN(M2PNConfig(**TINY)).eval()


def pair(h=24, w=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, h, w, generator=g), torch.rand(1, 1, h, w, generator=g)


# ---- selection and fallback ---------------------------------------------------------------------------
def test_auto_falls_back_to_cpu_and_logs_each_reason(tiny_model, tmp_path, caplog):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: auto would not fall back to the CPU")
    with caplog.at_level(logging.INFO, logger="engine.backends"):
        runner = create_runner(tiny_model, "auto", cache_dir=tmp_path)
    assert runner.choice.requested == "auto" and runner.choice.name == "cpu"
    reasons = " ".join(runner.choice.fallbacks)
    assert "tensorrt skipped" in reasons and "torch-tensorrt" in reasons
    assert "cuda skipped" in reasons and "CUDA" in reasons
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "engine.backends")
    assert "tensorrt skipped" in logged and "cuda skipped" in logged and "inference backend: cpu" in logged
    assert "requested auto" in runner.choice.describe()


def test_explicit_cuda_falls_back_to_cpu_with_warning(tiny_model, tmp_path, caplog):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with caplog.at_level(logging.WARNING, logger="engine.backends"):
        runner = create_runner(tiny_model, "cuda", cache_dir=tmp_path, cpu_runtime="torch")
    assert runner.choice.name == "cpu" and runner.choice.runtime == "torch"
    assert any("cuda skipped" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert not any("tensorrt" in f for f in runner.choice.fallbacks)  # cuda never tries tensorrt


def test_strict_and_unknown_backends_raise(tiny_model, tmp_path):
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        create_runner(tiny_model, "opencl")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="torch-tensorrt"):
            create_runner(tiny_model, "tensorrt", cache_dir=tmp_path, strict=True)


def test_cpu_runtimes_agree_with_the_model(tiny_model, tmp_path):
    ir, vi = pair()
    with torch.inference_mode():
        expected = tiny_model(ir, vi).fused
    onnx = create_runner(tiny_model, "cpu", cache_dir=tmp_path, cpu_runtime="onnxruntime")
    eager = create_runner(tiny_model, "cpu", cpu_runtime="torch")
    assert onnx.choice.runtime == "onnxruntime" and isinstance(eager, TorchCpuRunner)
    for runner in (onnx, eager):
        out = runner(ir, vi)
        assert out.shape == (1, 1, 24, 32)
        assert torch.allclose(out, expected, atol=1e-4)
    # dynamic axes: another size and a batch of 2 through the same exported graph
    ir2, vi2 = torch.rand(2, 1, 17, 40), torch.rand(2, 1, 17, 40)
    with torch.inference_mode():
        assert torch.allclose(onnx(ir2, vi2), tiny_model(ir2, vi2).fused, atol=1e-4)
    # the exported graph was cached on disk and is reused (one entry)
    assert len(EngineCache(tmp_path, "onnx").entries()) == 1
    create_runner(tiny_model, "cpu", cache_dir=tmp_path, cpu_runtime="onnxruntime")
    assert len(EngineCache(tmp_path, "onnx").entries()) == 1


# ---- cache keys -----------------------------------------------------------------------------------------
def test_cache_key_changes_with_weights_shape_precision_and_versions(tiny_model):
    h = model_hash(tiny_model)
    assert h == model_hash(tiny_model)  # deterministic
    other = M2PN(M2PNConfig(**TINY)).eval()
    other.load_state_dict(tiny_model.state_dict())
    assert model_hash(other) == h  # same weights -> same hash
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    assert model_hash(other) != h  # changed weights -> new hash
    spec = ShapeSpec.static(1, 480, 640)
    versions = {"torch": "2.13.0", "torch_tensorrt": "2.13.0"}
    base = CacheKey.make(h, spec, "fp16", "torch-tensorrt", versions)
    assert base.digest == CacheKey.make(h, spec, "fp16", "torch-tensorrt", dict(versions)).digest
    variants = [
        CacheKey.make(model_hash(M2PN(M2PNConfig(**TINY))), spec, "fp16", "torch-tensorrt", versions),
        CacheKey.make(h, ShapeSpec.static(1, 720, 1280), "fp16", "torch-tensorrt", versions),
        CacheKey.make(h, ShapeSpec.dynamic_range((480, 640)), "fp16", "torch-tensorrt", versions),
        CacheKey.make(h, spec, "fp32", "torch-tensorrt", versions),
        CacheKey.make(h, spec, "fp16", "torch-tensorrt", {**versions, "torch_tensorrt": "2.14.0"}),
    ]
    digests = {base.digest, *(k.digest for k in variants)}
    assert len(digests) == 1 + len(variants)


def test_model_hash_sees_the_memory_bank_buffer(tiny_model):
    clone = M2PN(M2PNConfig(**TINY)).eval()
    clone.load_state_dict(tiny_model.state_dict())
    buffers = dict(clone.named_buffers())
    assert buffers, "M2PN keeps its memory bank in buffers"
    name, buf = next((n, b) for n, b in buffers.items() if b.is_floating_point() and b.numel() > 1)
    with torch.no_grad():
        buf.add_(0.5)
    assert model_hash(clone) != model_hash(tiny_model), f"changing buffer {name} must change the hash"


# ---- engine cache: hit / miss / rebuild against a fake compiler -----------------------------------------
class FakeCompiler:
    """Stands in for torch-tensorrt only: "compiling" keeps the module, "saving" writes its state_dict.

    What is under test is EngineSet/EngineCache's bookkeeping, which is the same for either compiler.
    """

    name = "fake-trt"

    def __init__(self, version: str = "1.0") -> None:
        self.version, self.compiled, self.loaded = version, [], []

    def versions(self):
        return {"torch": torch.__version__, "fake": self.version}

    def compile(self, module, spec, precision):
        self.compiled.append((spec.key(), precision))
        return module

    def save(self, compiled, path: Path, spec, precision):
        torch.save(compiled.state_dict(), path)

    def load(self, path: Path):
        self.loaded.append(path.name)
        state = torch.load(path, weights_only=True)
        return lambda ir, vi: torch.full_like(ir, float(len(state)))


def _engine_set(model, root, compiler, **kw):
    from engine.backends import FusedOutput

    return EngineSet(FusedOutput(model), compiler, EngineCache(root, "ep"), **kw)


def test_engine_cache_miss_then_hit_then_rebuild_on_change(tiny_model, tmp_path):
    compiler = FakeCompiler()
    engines = _engine_set(tiny_model, tmp_path, compiler, precision="fp16", multiple=32)
    engines.engine((1, 1, 480, 640))
    assert engines.builds == 1 and compiler.compiled == [("1x1x480x640", "fp16")]
    assert len(list(tmp_path.glob("*.ep"))) == 1 and len(list(tmp_path.glob("*.json"))) == 1
    engines.engine((1, 1, 480, 640))  # in memory: nothing new
    assert engines.builds == 1 and engines.cache_hits == 0

    # a fresh process (new EngineSet) finds the engine on disk
    again = _engine_set(tiny_model, tmp_path, compiler, precision="fp16", multiple=32)
    again.engine((1, 1, 480, 640))
    assert again.builds == 0 and again.cache_hits == 1 and len(compiler.loaded) == 1

    # precision, shape, weights and compiler version each force a rebuild beside the old entry
    _engine_set(tiny_model, tmp_path, compiler, precision="fp32").engine((1, 1, 480, 640))
    _engine_set(tiny_model, tmp_path, compiler, precision="fp16").engine((1, 1, 736, 1280))
    changed = M2PN(M2PNConfig(**TINY)).eval()
    _engine_set(changed, tmp_path, compiler, precision="fp16").engine((1, 1, 480, 640))
    _engine_set(tiny_model, tmp_path, FakeCompiler("2.0"), precision="fp16").engine((1, 1, 480, 640))
    assert len(compiler.compiled) == 4
    assert len(EngineCache(tmp_path, "ep").entries()) == 5


def test_half_written_cache_entry_is_a_miss(tiny_model, tmp_path):
    compiler = FakeCompiler()
    engines = _engine_set(tiny_model, tmp_path, compiler)
    key = engines.key_for(engines.spec_for((1, 1, 64, 64)))
    EngineCache(tmp_path, "ep").engine_path(key).parent.mkdir(parents=True, exist_ok=True)
    EngineCache(tmp_path, "ep").engine_path(key).write_bytes(b"partial")  # engine without its JSON
    engines.engine((1, 1, 64, 64))
    assert engines.builds == 1 and engines.cache_hits == 0


def test_dynamic_engine_serves_every_size_in_range(tiny_model, tmp_path):
    compiler = FakeCompiler()
    engines = _engine_set(tiny_model, tmp_path, compiler, dynamic=True, multiple=32)
    for shape in [(1, 1, 480, 640), (1, 1, 256, 320), (1, 1, 736, 1280)]:
        engines.engine(shape)
    assert engines.builds == 1 and compiler.compiled[0][0] == "1x1x16x16-1x1x480x640-1x1x1088x1920"
    with pytest.raises(BackendUnavailableError, match="outside the dynamic engine range"):
        engines.engine((1, 1, 2176, 3840))


def test_tensorrt_runner_pads_and_crops_with_a_fake_compiler(tiny_model, tmp_path):
    from engine.backends.tensorrt import TensorRTRunner

    runner = TensorRTRunner(tiny_model, "fp32", tmp_path, multiple=32, compiler=FakeCompiler())
    ir, vi = pair(30, 50)
    out = runner(ir, vi)
    assert out.shape == (1, 1, 30, 50) and out.dtype == torch.float32
    assert runner.engines.builds == 1
    assert runner.choice.name == "tensorrt" and runner.choice.precision == "fp32"
    if not torch.cuda.is_available():
        # The fake engine is the real module on the CPU: the result is the model on the padded 32x64 input,
        # cropped. (Not the model on the unpadded input: M2PN's prompts pool globally, so padding shows.)
        ir_p, _ = pad_to_multiple(ir, 32)
        vi_p, _ = pad_to_multiple(vi, 32)
        with torch.inference_mode():
            assert torch.allclose(out, tiny_model(ir_p, vi_p).fused[..., :30, :50], atol=1e-5)


# ---- shapes ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("h,w,m,expected", [(480, 640, 32, (480, 640)), (720, 1280, 32, (736, 1280)),
                                            (30, 50, 8, (32, 56)), (5, 7, 1, (5, 7))])
def test_padded_size(h, w, m, expected):
    assert padded_size(h, w, m) == expected


def test_pad_to_multiple_reflects_and_crops_back():
    x = torch.arange(30 * 50, dtype=torch.float32).reshape(1, 1, 30, 50)
    y, (h, w) = pad_to_multiple(x, 32)
    assert y.shape == (1, 1, 32, 64) and (h, w) == (30, 50)
    assert torch.equal(y[..., :h, :w], x)
    assert torch.equal(y[..., 30, :50], x[..., 28, :])  # reflection about the last row
    tiny = torch.rand(1, 1, 3, 3)
    z, _ = pad_to_multiple(tiny, 32)  # pad larger than the side: replicate instead of reflect
    assert z.shape == (1, 1, 32, 32) and torch.equal(z[..., -1, -1], tiny[..., -1, -1])
    same, _ = pad_to_multiple(x, 1)
    assert same is x


def test_shape_spec_accepts():
    static = ShapeSpec.static(1, 480, 640)
    assert static.accepts((1, 1, 480, 640)) and not static.accepts((1, 1, 480, 672)) and not static.dynamic
    dyn = ShapeSpec.dynamic_range((480, 640))
    assert dyn.dynamic and dyn.accepts((1, 1, 96, 1920)) and not dyn.accepts((1, 1, 32, 64))


# ---- CUDA (skipped here) --------------------------------------------------------------------------------
@requires_cuda
def test_cuda_runner_fp16_matches_fp32(tiny_model):
    from engine.backends.cuda import CudaRunner

    runner = CudaRunner(tiny_model, "fp16", warmup=1, warmup_shape=(64, 64))
    ir, vi = pair(64, 96)
    with torch.inference_mode():
        expected = tiny_model(ir, vi).fused
    out = runner(ir, vi)
    assert out.device.type == "cpu" and out.shape == expected.shape
    assert (out - expected).abs().max() < 2e-2  # FP16 rounding
    assert create_runner(tiny_model, "cuda").choice.name == "cuda"
