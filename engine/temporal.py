"""Video mode: temporal stability for fused video (thermal gain jumps absorbed, flicker damped, no ghosts).

Fusing every frame on its own shows two things a still image does not:

* **thermal gain jumps**: a thermal camera's automatic gain control (AGC) re-maps its grey levels from
  one frame to the next (M3SVD ``0114_1611``: mean thermal level 36 -> 70 -> 44 within three frames).
  :class:`ThermalGainStabilizer` estimates each jump as a global linear map between consecutive thermal
  frames (matched grey-level quantiles), undoes it, and lets the correction
  decay back to the camera's own mapping over about a second, so a lasting change of the scene still
  shows, as a fade instead of a jump.
* **flicker**: the fusion's decisions wobble from frame to frame where nothing moves.
  :class:`TemporalFilter` is a motion-adaptive recursive filter: where neither source changed, the output
  is a running average of the fused frames; where either source changed (a walking person, a passing
  car) it is the current fused frame alone, so moving things neither lag nor leave ghosts.

:class:`VideoMode` chains the two and is what the application's pipeline runs: ``stabilize_thermal``
before fusion, ``filter`` after it. It keeps state per stream: call :meth:`VideoMode.reset` after a seek
or a change of source; a change of frame size or a cut (most of the frame changed) resets it by itself.
All images are uint8, as the pipeline carries them. No Qt, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import FusionInputError

#: the motion map and the gain fit run on frames reduced to this width (cheap, and averages sensor noise;
#: at 160 small moving people lagged: lag 0.13-0.16 on two M3SVD videos against 0.03-0.08 at 320)
WORK_WIDTH = 320


@dataclass
class VideoModeSettings:
    """Tuning of the video mode (grey levels are 8-bit levels of the reduced frames).

    Attributes:
        min_weight: weight of the current fused frame where nothing moves (1 = no temporal filter; the
            running average then spans about ``1 / min_weight`` frames).
        motion_low, motion_high: change of either source (grey levels) below which a pixel counts as still,
            above which as moving; the weight of the current frame ramps from ``min_weight`` to 1 between.
        cut_fraction: share of moving pixels above which the frame counts as a cut (state reset).
        noise_allowance: most grey levels of median frame-to-frame change added to both motion thresholds
            (M3SVD ``0114_1611``, a hand-held clip of swaying plants: lag of moving things 0.03 with no
            allowance, 0.056 with 1.5, 0.22 unbounded; the noisy demo scene at 160x120 is filtered with a
            mean weight of 0.94, 0.84 and 0.34 of the current frame).
        gain_decay: share of the thermal gain correction dropped per frame (0.05: ~1 s at 25 FPS to fade).
        gain_max_spread: largest RMS distance (grey levels) of the matched quantiles from the fitted line
            for a change to count as a gain jump; above it the change is left alone.
        stabilize_gain: estimate and undo thermal gain jumps.
    """

    min_weight: float = 0.3
    motion_low: float = 3.0
    motion_high: float = 10.0
    cut_fraction: float = 0.6
    noise_allowance: float = 1.5
    gain_decay: float = 0.05
    gain_max_spread: float = 4.0
    stabilize_gain: bool = True

    def validate(self) -> None:
        if not 0.0 < self.min_weight <= 1.0:
            raise FusionInputError(f"video mode: min_weight must be in (0, 1], got {self.min_weight}")
        if not 0.0 <= self.motion_low < self.motion_high:
            raise FusionInputError(f"video mode: need 0 <= motion_low < motion_high, got {self.motion_low}, "
                                   f"{self.motion_high}")
        if not 0.0 <= self.gain_decay <= 1.0:
            raise FusionInputError(f"video mode: gain_decay must be in [0, 1], got {self.gain_decay}")


def reduce(image: np.ndarray, width: int = WORK_WIDTH) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> (h, width) float32 grey levels, area-averaged (aspect kept)."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = image.shape
    width = min(width, w)
    height = max(1, round(h * width / w))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


#: quantile levels (percent) matched between consecutive thermal frames
GAIN_QUANTILES = np.arange(5.0, 96.0, 5.0)


def quantiles(image: np.ndarray) -> np.ndarray:
    """The :data:`GAIN_QUANTILES` of a grey-level image (float64), from a 1024-bin histogram (a quarter grey
    level; 0.24 instead of 1.7 ms for np.percentile on a 320x180 frame)."""
    hist = cv2.calcHist([np.asarray(image, np.float32)], [0], None, [1024], [0.0, 256.0]).ravel().astype(np.float64)
    cdf = np.cumsum(hist)
    if cdf[-1] <= 0:
        return np.zeros(len(GAIN_QUANTILES))
    return np.interp(GAIN_QUANTILES / 100.0, cdf / cdf[-1], np.arange(1, 1025) * 0.25)


def fit_gain(src: np.ndarray, dst: np.ndarray) -> tuple[float, float, float]:
    """Fit the global re-mapping ``dst ~= g * src + o`` between two (h, w) float32 thermal frames.

    Matches the 5th..95th percentiles of the two frames and fits a line through the pairs. Quantiles,
    not pixel pairs: a regression over pixels is diluted by sensor noise (on M3SVD ``0114_1611`` the
    grey levels span 32..40 before a jump, so per-pixel noise hides most of the slope), while the
    quantiles of 19,000 pixels are steady; moving things shift few quantiles.

    ``src`` and ``dst`` may also be given as their :func:`quantiles` already (1-D arrays).

    Returns:
        (g, o, spread): ``spread`` is the RMS distance (grey levels) of the quantile pairs from the line
        (large when the change is not a global re-mapping).
    """
    qs = src if src.ndim == 1 else quantiles(src)
    qd = dst if dst.ndim == 1 else quantiles(dst)
    var = qs.var()
    if var < 0.25:  # a flat frame: nothing to fit
        return 1.0, 0.0, 0.0
    g = float(((qs - qs.mean()) * (qd - qd.mean())).mean() / var)
    o = float(qd.mean() - g * qs.mean())
    spread = float(np.sqrt(np.mean((qd - (g * qs + o)) ** 2)))
    return g, o, spread


class ThermalGainStabilizer:
    """Undo thermal AGC jumps: ``ir_out = G * ir + O`` with (G, O) tracking the camera's re-mapping.

    Each frame, the map from the current raw thermal frame to the previous one is fitted (reduced
    frames, quantile matching, :func:`fit_gain`) and composed with the running correction, which then decays toward the
    identity by ``gain_decay`` per frame.
    """

    def __init__(self, settings: VideoModeSettings | None = None) -> None:
        self.settings = settings or VideoModeSettings()
        self.reset()

    def reset(self) -> None:
        self.gain, self.offset = 1.0, 0.0
        self._prev: np.ndarray | None = None
        self._prev_q: np.ndarray | None = None

    def __call__(self, ir: np.ndarray, small: np.ndarray | None = None) -> np.ndarray:
        """(H, W) uint8 thermal -> (H, W) uint8 with the gain jumps taken out.

        ``small``: the frame already reduced by :func:`reduce` (saves a resize when the caller has it).
        """
        if ir.dtype != np.uint8 or ir.ndim != 2:
            raise FusionInputError(f"video mode: thermal frame must be (H, W) uint8, got {ir.dtype} {ir.shape}")
        small = reduce(ir) if small is None else small
        s = self.settings
        q = quantiles(small)
        if self._prev is not None and self._prev.shape == small.shape:
            g, o, spread = fit_gain(q, self._prev_q)
            if spread <= s.gain_max_spread and 0.25 <= g <= 4.0:
                # raw_t -> raw_{t-1} is (g, o); compose with raw_{t-1} -> display (gain, offset)
                self.gain, self.offset = self.gain * g, self.gain * o + self.offset
        else:
            self.gain, self.offset = 1.0, 0.0
        self._prev, self._prev_q = small, q
        # Fade the correction: a lasting change of the scene shows within about 1 / gain_decay frames.
        keep = 1.0 - s.gain_decay
        self.gain, self.offset = 1.0 + (self.gain - 1.0) * keep, self.offset * keep
        if abs(self.gain - 1.0) < 1e-3 and abs(self.offset) < 0.25:
            return ir
        return cv2.convertScaleAbs(ir, alpha=self.gain, beta=self.offset)  # saturating uint8


class TemporalFilter:
    """Motion-adaptive recursive filter of the fused frames.

    ``out_t = w * fused_t + (1 - w) * out_{t-1}``, with per-pixel ``w`` = ``min_weight`` where neither
    source changed since the previous frame and 1 where either did (ramp between ``motion_low`` and
    ``motion_high`` grey levels of change above the frame's median change, computed on reduced frames,
    dilated by one reduced pixel so the rims of moving things count as moving).
    """

    def __init__(self, settings: VideoModeSettings | None = None) -> None:
        self.settings = settings or VideoModeSettings()
        self.reset()

    def reset(self) -> None:
        self._out: np.ndarray | None = None
        self._prev_ir: np.ndarray | None = None
        self._prev_vi: np.ndarray | None = None
        self.last_weight: np.ndarray | None = None  # (h, w) weight of the current frame, for inspection
        self.cuts = 0

    def weight_map(self, ir_small: np.ndarray, vi_small: np.ndarray) -> tuple[np.ndarray, float]:
        """(h, w) float32 weight of the current frame from the change of both reduced sources, and the share
        of the frame that moved.

        The thresholds sit above the frame's own noise: the median change (most of a frame does not move),
        up to ``noise_allowance``, is added to both, so a noisy camera (or a small frame, reduced less) does
        not count as all moving.
        """
        s = self.settings
        change = cv2.blur(np.maximum(cv2.absdiff(ir_small, self._prev_ir), cv2.absdiff(vi_small, self._prev_vi)), (3, 3))
        moved = float((change > s.motion_high).mean())  # before the noise allowance: a cut is a cut
        noise = min(float(np.median(change)), s.noise_allowance)
        low, high = s.motion_low + noise, s.motion_high + noise
        change = cv2.dilate(change, np.ones((3, 3), np.uint8))
        ramp = np.clip((change - low) / (high - low), 0.0, 1.0)
        return (s.min_weight + (1.0 - s.min_weight) * ramp).astype(np.float32), moved

    def __call__(self, fused: np.ndarray, ir_small: np.ndarray, vi_small: np.ndarray) -> np.ndarray:
        """Filter one frame.

        Args:
            fused: (H, W) or (H, W, 3) uint8 fused frame.
            ir_small, vi_small: (h, w) float32 reduced sources (:func:`reduce`), thermal already stabilised.

        Returns:
            uint8 array shaped like ``fused``.
        """
        if fused.dtype != np.uint8:
            raise FusionInputError(f"video mode: fused frame must be uint8, got {fused.dtype}")
        fresh = (self._out is None or self._out.shape != fused.shape or self._prev_ir is None
                 or self._prev_ir.shape != ir_small.shape)
        weight = None
        if not fresh:
            weight, moved = self.weight_map(ir_small, vi_small)
            if moved > self.settings.cut_fraction:
                self.cuts += 1  # most of the frame changed: a cut or a seek, start over
                weight = None
        self._prev_ir, self._prev_vi = ir_small, vi_small
        if weight is None:
            self.last_weight = None
            self._out = fused.copy()
            return fused
        self.last_weight = weight
        out = self._blend(fused, weight)
        self._out = out
        return out.copy()

    def _blend(self, fused: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """``weight * fused + (1 - weight) * previous`` at full resolution.

        Most of a frame is still (weight = ``min_weight``): one scalar blend for the whole frame, then the
        per-pixel blend only on the bands of rows where something moved (at 1280x720 about 0.6 ms plus
        the moving share of 3.2 ms, instead of 3.9 ms for a per-pixel blend of every row).
        """
        s = self.settings
        out = cv2.addWeighted(fused, s.min_weight, self._out, 1.0 - s.min_weight, 0.0)
        moving_rows = (weight > s.min_weight + 1e-3).any(axis=1)
        if not moving_rows.any():
            return out
        height, width = fused.shape[:2]
        w_full = cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR)
        scale = height / weight.shape[0]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], moving_rows.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):  # runs of moving rows, widened by one reduced row
            y0 = max(0, int((start - 1) * scale))
            y1 = min(height, int(np.ceil((stop + 1) * scale)))
            band = w_full[y0:y1]
            out[y0:y1] = cv2.blendLinear(fused[y0:y1], self._out[y0:y1], band, 1.0 - band)
        return out


class VideoMode:
    """Thermal gain stabilisation before fusion and the temporal filter after it, for one video stream.

    Example (what the pipeline does per frame)::

        video = VideoMode()
        ir = video.stabilize_thermal(ir)          # (H, W) uint8
        fused = engine.fuse(ir, rgb)              # (H, W, 3) uint8
        fused = video.filter(fused)               # (H, W, 3) uint8
    """

    def __init__(self, settings: VideoModeSettings | None = None) -> None:
        self.settings = settings or VideoModeSettings()
        self.settings.validate()
        self.gain = ThermalGainStabilizer(self.settings)
        self.temporal = TemporalFilter(self.settings)
        self._ir_small: np.ndarray | None = None
        self._vi_small: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the past (after a seek, a new source or a method change)."""
        self.gain.reset()
        self.temporal.reset()
        self._ir_small = self._vi_small = None

    def stabilize_thermal(self, ir: np.ndarray, vi: np.ndarray | None = None) -> np.ndarray:
        """(H, W) uint8 thermal -> (H, W) uint8 with AGC jumps absorbed; ``vi`` (the registered visible
        frame, any uint8 layout) is reduced here too for the motion map of :meth:`filter`."""
        small = reduce(ir)
        out = self.gain(ir, small) if self.settings.stabilize_gain else ir
        if out is not ir:
            small = np.clip(small * self.gain.gain + self.gain.offset, 0.0, 255.0).astype(np.float32)
        self._ir_small = small
        self._vi_small = reduce(vi) if vi is not None else None
        return out

    def filter(self, fused: np.ndarray, vi: np.ndarray | None = None) -> np.ndarray:
        """Temporal filter of one fused uint8 frame (after :meth:`stabilize_thermal` of the same pair)."""
        if self._ir_small is None:
            raise FusionInputError("video mode: call stabilize_thermal(ir, vi) for a frame before filter(fused)")
        vi_small = reduce(vi) if vi is not None else self._vi_small
        if vi_small is None:
            raise FusionInputError("video mode: the visible frame is needed (pass vi to stabilize_thermal or filter)")
        out = self.temporal(fused, self._ir_small, vi_small)
        self._ir_small = self._vi_small = None
        return out

    def process(self, ir: np.ndarray, vi: np.ndarray, fuse) -> np.ndarray:
        """Whole step: ``fuse(stabilised ir, vi) -> fused`` between the two halves; returns the filtered frame."""
        ir = self.stabilize_thermal(ir, vi)
        return self.filter(fuse(ir, vi))
