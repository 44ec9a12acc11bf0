"""The registered ``m2pn_rt`` method: M2PN in real time on a CPU.

Per frame (B pairs of (H, W) luminance):

1. both sources are reduced by ``scale`` and the pixel budget (area averaging, e.g. 640x480 -> 120x90);
2. the trained M2PN (prompts, memory bank and all, frozen) fuses the reduced pair on the chosen backend
   (ONNX Runtime on a CPU by default; see :func:`engine.backends.create_runner`);
3. its output is explained locally as ``a*IR + b*VIS + c`` (two-guide guided filter at low resolution),
   ``a, b, c`` are upsampled bilinearly and applied to the full-resolution sources.

So the network still decides how much of each modality every region gets (its prompts and memory at
work); full-resolution edges and texture come from the sources in those proportions. The cost of the
network falls with the square of ``scale``; the guided step is a few box filters at low resolution plus
one multiply-add per pixel at full resolution.

**Streaming** (``set_streaming(True)``, used by the application's video mode): the network for frame t
runs on a worker thread while frame t is finished with the coefficients of frame t-1 and while the
pipeline reads the next pair, so the network's time overlaps the rest of the pipeline. Every pixel is
still frame t's own (the sources carry all edges and texture); only the mix proportions, which vary over
about 8 low-resolution pixels, are one frame old. Still images and batches never stream.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

from ..backends import RunnerBacked, create_runner
from ..errors import FusionInputError
from ..m2pn import M2PN
from ..m2pn.weights import load_frozen
from ..methods.base import FusionMethod
from ..registry import register_method
from .guided import LinearCoefficients, guided_upsample_batch, low_resolution_model

#: defaults chosen from the measurements in docs/benchmarks.md ("what we tried")
DEFAULT_SCALE = 0.25
#: radius 8 (low-resolution pixels): the widest window keeps the mix proportions steady across strong
#: edges, so no band forms beside them (halo measure on the lakeside frame: r = 2: 3.4, 4: 2.3, 6: 1.8,
#: 8: 1.55 grey levels, the full network 1.6; ``python -m bench.halo``)
DEFAULT_RADIUS = 8
#: eps 3e-4 with r = 8: halo 1.34 (lakeside) and the closest to the full network's Qabf / VIF of the
#: settings tried (TNO +1.2 / +8.8 %, MSRS +8.6 / +11.5 %; eps 1e-4: +4.3 / +10.3 and +12.8 / +16.9 %)
DEFAULT_EPS = 3e-4
#: the low-resolution residual of the linear fit is NOT added back: it carries the 120x90 network's own
#: edge bands, which upsampled become the halos (dark band over the skyline, rims round people)
DEFAULT_RESIDUAL = False
#: pixel budget of the network input (120x90): caps the cost per frame whatever the camera resolution
DEFAULT_MAX_WORK_PIXELS = 120 * 90
#: two intra-op threads: on the idle 2-core target the pipeline ran at 36.8 FPS at 640x480 with 2 against
#: 28.4 FPS with 1 (``python -m bench --methods m2pn_rt --resolutions 640x480 --threads N``); on a machine
#: busy with other work 1 thread was faster (39.2 against 63.8 ms per frame), so it stays an option
DEFAULT_THREADS = 2
#: streaming: the network has its own thread beside the pipeline's, so one intra-op thread each on 2 cores
STREAMING_THREADS = 1
#: the reduced image never gets smaller than this on its short side (the network needs some context)
MIN_WORK_SIDE = 32


def work_size(height: int, width: int, scale: float, max_pixels: int | None = None) -> tuple[int, int]:
    """(h, w) the network runs at for an (height, width) frame.

    ``round(scale * side)``, further reduced (same aspect) to at most ``max_pixels`` pixels when given;
    the short side never drops below 32 pixels (or the frame's own size).
    """
    if not 0.0 < scale <= 1.0:
        raise FusionInputError(f"m2pn_rt: scale must be in (0, 1], got {scale}")
    if max_pixels is not None:
        if max_pixels < 1:
            raise FusionInputError(f"m2pn_rt: max_work_pixels must be >= 1, got {max_pixels}")
        scale = min(scale, (max_pixels / float(height * width)) ** 0.5)
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    short = min(h, w)
    if short < MIN_WORK_SIDE and min(height, width) > short:
        grow = min(MIN_WORK_SIDE, min(height, width)) / short
        h, w = min(height, round(h * grow)), min(width, round(w * grow))
    return h, w


def reduce_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) float32 -> (height, width) by area averaging, in two steps when that is cheaper.

    OpenCV's area resize has a fast path for integer factors only; 1280x720 -> 139x78 (factor 9.2) takes
    it in two steps: integer factor 9 first (the last W % 9 columns / H % 9 rows, at most 8 pixels, are
    dropped), then 142x80 -> 139x78. 1.1 -> 0.25 ms of one core per image at 1280x720, 2.4 -> 0.6 ms at
    1920x1080; the result differs from the one-step resize by about 2 grey levels on noise.
    """
    big_h, big_w = image.shape
    k = min(big_h // height, big_w // width)
    if k < 2 or (big_h % height == 0 and big_w % width == 0):
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    mid_h, mid_w = big_h // k, big_w // k
    mid = cv2.resize(image[:mid_h * k, :mid_w * k], (mid_w, mid_h), interpolation=cv2.INTER_AREA)
    return cv2.resize(mid, (width, height), interpolation=cv2.INTER_AREA)


@register_method("m2pn_rt", "M2PN in real time: network at reduced size + edge-aware guided upsampling")
class M2PNRealtimeMethod(RunnerBacked, FusionMethod):
    """Real-time M2PN.

    Options:
        weights: M2PN weights file (default ``engine/weights/m2pn.pt``); missing -> WeightsError.
        model: an already built :class:`M2PN` (tests); ``weights`` is then ignored.
        scale: network resolution relative to the frame (default 0.25; 1.0 = full-resolution M2PN).
        max_work_pixels: cap on the network's input pixels (default 10800 = 120x90; None: no cap), so
            the cost per frame stays flat from 640x480 to 1280x720.
        radius: guided-filter window radius in low-resolution pixels (default 8).
        eps: guided-filter regulariser (default 3e-4).
        residual: add back the low-resolution residual of the linear fit (default False: it brings halos).
        backend: ``auto`` | ``tensorrt`` | ``cuda`` | ``cpu`` (see :mod:`engine.backends`).
        cpu_runtime: ``auto`` | ``onnxruntime`` | ``torch`` for the cpu backend.
        threads: CPU threads of the runtime (default 2, see ``DEFAULT_THREADS``; None: the runtime's default).
        cache_dir: compiled-engine / ONNX cache folder.
        streaming: start in streaming mode (see the module docstring; default False).
    """

    def __init__(self, weights: str | Path | None = None, model: M2PN | None = None, scale: float = DEFAULT_SCALE,
                 max_work_pixels: int | None = DEFAULT_MAX_WORK_PIXELS,
                 radius: int = DEFAULT_RADIUS, eps: float = DEFAULT_EPS,
                 residual: bool = DEFAULT_RESIDUAL, backend: str = "auto",
                 cpu_runtime: str = "auto", threads: int | None = DEFAULT_THREADS, cache_dir: str | Path | None = None,
                 streaming: bool = False) -> None:
        work_size(64, 64, float(scale), max_work_pixels)  # validates scale and the budget
        self.max_work_pixels = None if max_work_pixels is None else int(max_work_pixels)
        if int(radius) < 1 or float(eps) <= 0:
            raise FusionInputError(f"m2pn_rt: radius must be >= 1 and eps > 0, got radius={radius}, eps={eps}")
        # Frozen: eval mode keeps the memory bank read-only (it is only written in training).
        self.model, self.meta, self.weights_path = load_frozen(weights, model)
        self.scale, self.radius, self.eps, self.residual = float(scale), int(radius), float(eps), bool(residual)
        self._runner_options = dict(backend=backend, cache_dir=cache_dir, cpu_runtime=cpu_runtime)
        self._threads = threads
        self._runner = create_runner(self.model, threads=threads, **self._runner_options)
        self._runner_threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple[tuple[int, int, int], Future] | None = None  # (frame shape, coefficients of the last frame)
        self.streaming = False
        self.set_streaming(streaming)

    def set_streaming(self, on: bool) -> None:
        """Overlap the network with the rest of the pipeline (one frame old mix proportions; see above)."""
        self.reset_stream()
        self.streaming = bool(on)
        if self.streaming and self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="m2pn_rt-network")
        # On the CPU the network's thread count follows the mode: all of them for one frame at a time,
        # one beside the pipeline's thread when streaming (a second one would only contend for the cores).
        threads = STREAMING_THREADS if self.streaming else self._threads
        runner = self._runner
        if runner is not None and runner.choice.name == "cpu" and threads != self._runner_threads:
            self._runner = create_runner(self.model, threads=threads, **self._runner_options)
            self._runner_threads = threads
            runner.close()

    def reset_stream(self) -> None:
        """Forget the previous frame's coefficients (after a seek or a change of source)."""
        pending, self._pending = self._pending, None
        if pending is not None and not pending[1].cancel():
            pending[1].exception()  # a pass in flight finishes first (its runner may be replaced next)

    def fuse(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(H, W) float32 [0, 1] thermal and visible luminance -> (H, W) float32 [0, 1] fused."""
        return self.fuse_batch(ir[None], vi[None])[0]

    def fuse_batch(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(B, H, W) float32 [0, 1] pairs -> (B, H, W) float32 [0, 1]; one network pass for the batch."""
        ir, vi = np.asarray(ir, np.float32), np.asarray(vi, np.float32)
        if ir.ndim != 3 or ir.shape != vi.shape:
            raise FusionInputError(f"m2pn_rt: expected two (B, H, W) batches of one shape, got {ir.shape} and {vi.shape}")
        if min(ir.shape[1:]) < 2:
            raise FusionInputError(f"m2pn_rt: images must be at least 2x2 pixels, got {ir.shape[2]}x{ir.shape[1]}")
        if self._runner is None:
            raise FusionInputError("m2pn_rt: this method was closed; create a new one to fuse again")
        _, height, width = ir.shape
        h, w = work_size(height, width, self.scale, self.max_work_pixels)
        if (h, w) == (height, width):  # scale 1: plain full-resolution M2PN
            return self._network(ir, vi)
        ir_low = np.stack([reduce_area(x, h, w) for x in ir])
        vi_low = np.stack([reduce_area(x, h, w) for x in vi])
        if self.streaming and ir.shape[0] == 1 and self._executor is not None:
            return self._fuse_streaming(ir, vi, ir_low, vi_low)
        fused_low = self._network(ir_low, vi_low)
        return guided_upsample_batch(ir, vi, ir_low, vi_low, fused_low, self.radius, self.eps, self.residual)

    def _coefficients(self, ir_low: np.ndarray, vi_low: np.ndarray) -> LinearCoefficients:
        """(1, h, w) reduced pair -> the low-resolution linear model of the network's output on it."""
        fused_low = self._network(ir_low, vi_low)
        return low_resolution_model(ir_low[0], vi_low[0], fused_low[0], self.radius, self.eps, self.residual)

    def _fuse_streaming(self, ir: np.ndarray, vi: np.ndarray, ir_low: np.ndarray, vi_low: np.ndarray) -> np.ndarray:
        """(1, H, W) pair -> (1, H, W): frame t with the coefficients of frame t-1; frame t's network starts now."""
        job = self._executor.submit(self._coefficients, ir_low, vi_low)
        previous, self._pending = self._pending, (ir.shape, job)
        if previous is None or previous[0] != ir.shape or previous[1].cancelled():
            coeffs = job.result()  # first frame (or a new size): nothing older to use
        else:
            coeffs = previous[1].result()
        out = coeffs.apply_upsampled(ir[0], vi[0])
        return np.clip(out, 0.0, 1.0, out=out)[None]

    def close(self) -> None:
        """Stop the streaming worker (waits for a network pass in flight) and release the runner."""
        self.reset_stream()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        super().close()

    def _network(self, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        """(B, h, w) -> (B, h, w) float32: the M2PN forward pass on the backend."""
        ir_t = torch.from_numpy(np.ascontiguousarray(ir))[:, None]
        vi_t = torch.from_numpy(np.ascontiguousarray(vi))[:, None]
        fused = self._runner(ir_t, vi_t)[:, 0]
        return np.ascontiguousarray(fused.clamp(0.0, 1.0).numpy(), dtype=np.float32)
