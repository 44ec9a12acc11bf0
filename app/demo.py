"""The built-in demo: a procedurally generated, synchronised thermal + colour night street.

Why it exists: ``python run_app.py`` must show something meaningful with no camera and no download,
and it must show *why* fusion matters. The colour view is dark, noisy and low in contrast: street
lights, a textured facade with lit windows, road markings and parked cars are visible, but the
pedestrians (dark clothes, walking in the shadow between lamps) are almost invisible. The thermal view
shows the warm pedestrians and the moving car (hot engine, wheels and exhaust) clearly against a cool
background, but none of the scene's texture, markings or lights. Only the fused view shows both.

The scene is a pure function of (seed, frame index), so both sources can render independently in
their own capture threads and still agree; the static backgrounds and a bank of noise fields are
precomputed so a 640x480 frame costs a few milliseconds.

``DemoThermalSource`` and ``DemoRgbSource`` are ordinary :class:`FrameSource` s sharing one
:class:`DemoScene` (one clock), so the demo goes through the same ``StereoCapture`` path as cameras.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import SourceError
from .sources.base import Frame, FrameSource

# Thermal levels (0..255 of the 8-bit view). Warm bodies stand far above the cool background.
T_SKY, T_FACADE, T_WINDOW, T_ROAD, T_SIDEWALK, T_PARKED = 25, 80, 105, 95, 88, 70
T_LAMP, T_BODY, T_HEAD, T_CAR_BODY, T_ENGINE, T_WHEEL, T_EXHAUST = 150, 215, 240, 115, 250, 225, 190
NOISE_BANK_SIZE = 8


@dataclass(frozen=True)
class Pedestrian:
    """A walker on the sidewalk: start position (fraction of width), speed (widths per second), height."""

    x0: float
    speed: float
    height: float  # fraction of frame height
    phase: float  # gait phase offset (radians)


class DemoScene:
    """Deterministic night street renderer.

    Args:
        width, height: frame size in pixels (any size >= 64x48).
        fps: scene frame rate; frame ``i`` shows time ``i / fps``.
        seed: fixes the facade texture, windows, noise fields and pedestrian placement.
    """

    def __init__(self, width: int = 640, height: int = 480, fps: float = 25.0, seed: int = 0) -> None:
        if width < 64 or height < 48:
            raise SourceError(f"demo scene size {width}x{height} is too small (minimum 64x48)")
        if fps <= 0:
            raise SourceError(f"demo frame rate must be positive, got {fps}")
        self.width, self.height, self.fps, self.seed = int(width), int(height), float(fps), int(seed)
        rng = np.random.default_rng(seed)
        self._horizon = int(0.62 * height)  # facade bottom / sidewalk top
        self._curb = int(0.70 * height)  # sidewalk bottom / road top
        self._lamp_xs = [int(f * width) for f in (0.12, 0.45, 0.78)]
        self._parked = [(0.22, 0.0), (0.58, 0.0)]  # (x fraction, unused) of parked cars at the far kerb
        self.pedestrians = [
            Pedestrian(x0=float(rng.uniform(0.2, 0.4)), speed=0.045, height=0.26, phase=0.0),
            Pedestrian(x0=float(rng.uniform(0.55, 0.75)), speed=-0.035, height=0.24, phase=1.3),
            Pedestrian(x0=float(rng.uniform(0.85, 0.95)), speed=0.028, height=0.22, phase=2.1),
        ]
        self.car_period_s = 7.0
        self._vis_bg = self._render_visible_background(rng)
        self._ir_bg = self._render_thermal_background(rng)
        # Noise fields, cycled per frame; positive and negative halves so cv2.add/subtract saturate cheaply.
        vis_noise = rng.normal(0.0, 8.0, (NOISE_BANK_SIZE, height, width, 3))
        ir_noise = rng.normal(0.0, 5.0, (NOISE_BANK_SIZE, height, width))
        self._vis_noise = _split_signed(vis_noise)
        self._ir_noise = _split_signed(ir_noise)

    # ----- static backgrounds -------------------------------------------------------------------------
    def _render_visible_background(self, rng: np.random.Generator) -> np.ndarray:
        """(H, W, 3) uint8 BGR: dark sky, textured facade with a few lit windows, lamps, road, parked cars."""
        h, w = self.height, self.width
        img = np.zeros((h, w, 3), np.float32)
        img[: self._horizon] = (22, 16, 14)  # night sky / facade base (BGR)
        facade_top = int(0.10 * h)
        # Brick texture: horizontal mortar lines and random per-brick shade.
        brick_h = max(3, h // 60)
        brick_w = max(6, w // 40)
        for row, y in enumerate(range(facade_top, self._horizon, brick_h)):
            offset = (row % 2) * brick_w // 2
            for x in range(-offset, w, brick_w):
                shade = rng.uniform(26, 40)
                img[y : y + brick_h - 1, max(0, x) : x + brick_w - 1] = (shade * 0.8, shade * 0.85, shade)
        # Windows: a grid, some lit warm yellow, most dark blue-gray glass.
        win_w, win_h = max(6, w // 16), max(6, h // 12)
        for wy in np.linspace(facade_top + win_h * 0.4, self._horizon - 0.16 * h - win_h * 1.4, 3):
            for wx in np.linspace(w * 0.04, w * 0.92, 9):
                x, y = int(wx), int(wy)
                lit = rng.uniform() < 0.3
                colour = (45, 110, 150) if lit else (38, 30, 28)
                cv2.rectangle(img, (x, y), (x + win_w, y + win_h), colour, -1)
                cv2.rectangle(img, (x, y), (x + win_w, y + win_h), (20, 20, 22), max(1, w // 320))
                cv2.line(img, (x + win_w // 2, y), (x + win_w // 2, y + win_h), (20, 20, 22), 1)
        # Ground floor: closed shop shutters in deep shadow, where the walkers pass.
        shutter_top = int(self._horizon - 0.16 * h)
        img[shutter_top : self._horizon] = (20, 20, 21)
        for y in range(shutter_top, self._horizon, max(2, h // 120)):
            img[y] = (27, 27, 28)
        img[self._horizon : self._curb] = (30, 30, 32)  # sidewalk
        img[self._curb :] = (24, 23, 23)  # asphalt
        cv2.line(img, (0, self._curb), (w, self._curb), (55, 55, 58), max(1, h // 160))  # kerb
        # Dashed centre line and a zebra crossing.
        lane_y = int(0.86 * h)
        dash = max(8, w // 16)
        for x in range(0, w, 2 * dash):
            cv2.rectangle(img, (x, lane_y), (x + dash, lane_y + max(2, h // 120)), (150, 165, 170), -1)
        for i in range(6):
            x = int(0.62 * w) + i * max(6, w // 45)
            cv2.rectangle(img, (x, self._curb + 4), (x + max(3, w // 90), h - 2), (85, 90, 92), -1)
        # Parked cars at the kerb: dark bodies with a faint roof reflection.
        for fx, _ in self._parked:
            self._draw_car_shape(img, int(fx * w), self._curb + int(0.04 * h), (40, 34, 70), (70, 70, 80))
        # Street lights: pole, lamp head, and a soft pool of light on the ground. Between them: shadow.
        light = np.zeros((h, w), np.float32)
        for lx in self._lamp_xs:
            cv2.line(img, (lx, int(0.18 * h)), (lx, self._curb), (45, 45, 48), max(2, w // 200))
            cv2.circle(light, (lx, int(0.18 * h)), max(3, w // 80), 1.0, -1)
            cv2.ellipse(light, (lx, self._curb), (w // 9, h // 10), 0, 0, 360, 0.55, -1)
        light = cv2.GaussianBlur(light, (0, 0), sigmaX=max(2.0, w / 60.0))
        img += light[..., None] * np.array([90, 150, 200], np.float32)  # sodium-orange glow (BGR)
        for lx in self._lamp_xs:
            cv2.circle(img, (lx, int(0.18 * h)), max(2, w // 110), (200, 240, 255), -1)
        return np.clip(img, 0, 255).astype(np.uint8)

    def _render_thermal_background(self, rng: np.random.Generator) -> np.ndarray:
        """(H, W) uint8 thermal: cold sky, cool facade with slightly warmer windows, road, cold parked cars."""
        h, w = self.height, self.width
        img = np.full((h, w), T_SKY, np.float32)
        facade_top = int(0.10 * h)
        img[facade_top : self._horizon] = T_FACADE
        win_w, win_h = max(6, w // 16), max(6, h // 12)
        for wy in np.linspace(facade_top + win_h * 0.4, self._horizon - 0.16 * h - win_h * 1.4, 3):
            for wx in np.linspace(w * 0.04, w * 0.92, 9):
                cv2.rectangle(img, (int(wx), int(wy)), (int(wx) + win_w, int(wy) + win_h), T_WINDOW, -1)
        img[self._horizon : self._curb] = T_SIDEWALK
        img[self._curb :] = T_ROAD
        for fx, _ in self._parked:
            self._draw_car_shape(img, int(fx * w), self._curb + int(0.04 * h), T_PARKED, T_PARKED - 8)
        for lx in self._lamp_xs:
            cv2.line(img, (lx, int(0.18 * h)), (lx, self._curb), T_FACADE - 10, max(2, w // 200))
            cv2.circle(img, (lx, int(0.18 * h)), max(3, w // 80), T_LAMP, -1)
        # Low-frequency temperature variation of the surfaces (sun-warmed patches, wind-cooled areas).
        blobs = cv2.resize(rng.normal(0, 6, (6, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        return np.clip(img + blobs, 0, 255).astype(np.uint8)

    def _draw_car_shape(self, img: np.ndarray, x: int, y_top: int, body, roof) -> None:
        """Draw a side-view car whose body top-left is (x, y_top) on ``img`` (in place)."""
        w, h = self.width, self.height
        car_w, car_h = int(0.16 * w), int(0.07 * h)
        cv2.rectangle(img, (x, y_top), (x + car_w, y_top + car_h), body, -1)
        cabin = np.array(
            [[x + car_w // 5, y_top], [x + car_w // 3, y_top - car_h * 2 // 3],
             [x + car_w * 3 // 4, y_top - car_h * 2 // 3], [x + car_w * 7 // 8, y_top]], np.int32
        )
        cv2.fillPoly(img, [cabin], roof)

    # ----- dynamic objects ----------------------------------------------------------------------------
    def time_of(self, index: int) -> float:
        return index / self.fps

    def pedestrian_boxes(self, index: int) -> list[tuple[int, int, int, int]]:
        """Ground-truth (x1, y1, x2, y2) pixel boxes of the pedestrians at frame ``index``."""
        boxes = []
        for p, (cx, foot_y, ph, _) in zip(self.pedestrians, self._pedestrian_poses(index)):
            boxes.append((int(cx - 0.2 * ph), int(foot_y - ph), int(cx + 0.2 * ph), int(foot_y)))
        return boxes

    def pedestrian_mask(self, index: int) -> np.ndarray:
        """(H, W) bool: where the pedestrians are at frame ``index`` (ground truth for tests and demos)."""
        mask = np.zeros((self.height, self.width), np.uint8)
        for pose in self._pedestrian_poses(index):
            self._draw_pedestrian(mask, pose, 1, 1)
        return mask.astype(bool)

    @property
    def static_visible(self) -> np.ndarray:
        """(H, W, 3) uint8: the noise-free colour background (no pedestrians, no moving car)."""
        return self._vis_bg

    @property
    def static_thermal(self) -> np.ndarray:
        """(H, W) uint8: the noise-free thermal background."""
        return self._ir_bg

    def _pedestrian_poses(self, index: int) -> list[tuple[float, float, float, float]]:
        t = self.time_of(index)
        poses = []
        span = 1.2  # walkers wrap around a strip slightly wider than the frame
        for k, p in enumerate(self.pedestrians):
            x = ((p.x0 + p.speed * t + 0.1) % span - 0.1) * self.width
            foot_y = self._horizon + (0.3 + 0.25 * k) * (self._curb - self._horizon)
            gait = np.sin(2 * np.pi * 1.8 * t + p.phase)
            poses.append((x, foot_y, p.height * self.height, gait))
        return poses

    def _car_pose(self, index: int) -> tuple[int, int]:
        """Top-left (x, y) of the moving car's body; it drives left to right along the near lane."""
        t = self.time_of(index)
        frac = (t % self.car_period_s) / self.car_period_s
        x = int((frac * 1.5 - 0.25) * self.width)
        return x, int(0.90 * self.height) - int(0.07 * self.height)

    def _draw_pedestrian(self, img: np.ndarray, pose, body, head) -> None:
        cx, foot_y, ph, gait = pose
        cx, foot_y = int(cx), int(foot_y)
        head_r = max(2, int(ph * 0.07))
        hip_y, shoulder_y = int(foot_y - ph * 0.48), int(foot_y - ph * 0.82)
        thick = max(2, int(ph * 0.07))
        stride = int(gait * ph * 0.16)
        cv2.line(img, (cx, hip_y), (cx + stride, foot_y), body, thick)  # legs swing in antiphase
        cv2.line(img, (cx, hip_y), (cx - stride, foot_y), body, thick)
        cv2.ellipse(img, (cx, (hip_y + shoulder_y) // 2), (max(2, int(ph * 0.09)), (hip_y - shoulder_y) // 2 + 1),
                    0, 0, 360, body, -1)
        cv2.line(img, (cx, shoulder_y + thick), (cx - stride // 2, hip_y), body, max(1, thick - 1))  # arms
        cv2.line(img, (cx, shoulder_y + thick), (cx + stride // 2, hip_y), body, max(1, thick - 1))
        cv2.circle(img, (cx, shoulder_y - head_r), head_r, head, -1)

    def _darken_silhouette(self, img: np.ndarray, pose) -> None:
        """Dark clothing in shadow: the walker only dims what is behind it a little (in place), so it is
        lost in the sensor noise except where it crosses a pool of lamp light."""
        cx, foot_y, ph, _ = pose
        x1, y1 = max(0, int(cx - 0.3 * ph)), max(0, int(foot_y - ph - 2))
        x2, y2 = min(self.width, int(cx + 0.3 * ph) + 1), min(self.height, int(foot_y) + 2)
        if x2 <= x1 or y2 <= y1:
            return
        mask = np.zeros((self.height, self.width), np.uint8)
        self._draw_pedestrian(mask, pose, 1, 1)
        roi, m = img[y1:y2, x1:x2], mask[y1:y2, x1:x2].astype(bool)
        roi[m] = (roi[m] * 0.82).astype(np.uint8)

    # ----- frames -------------------------------------------------------------------------------------
    def render_visible(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 BGR colour view of frame ``index``."""
        img = self._vis_bg.copy()
        for pose in self._pedestrian_poses(index):
            self._darken_silhouette(img, pose)
        x, y = self._car_pose(index)
        w, h = self.width, self.height
        self._draw_car_shape(img, x, y, (30, 28, 30), (45, 42, 42))
        car_w, car_h = int(0.16 * w), int(0.07 * h)
        # Headlights and their beam on the road (the car faces right), a red tail light.
        beam = np.array([[x + car_w, y + car_h // 3], [x + car_w + w // 4, y - car_h // 4],
                         [x + car_w + w // 4, y + car_h * 3 // 2]], np.int32)
        overlay = img.copy()
        cv2.fillPoly(overlay, [beam], (150, 190, 200))
        cv2.addWeighted(overlay, 0.35, img, 0.65, 0, dst=img)
        cv2.circle(img, (x + car_w - 2, y + car_h // 3), max(2, w // 140), (235, 250, 255), -1)
        cv2.circle(img, (x + 2, y + car_h // 3), max(1, w // 200), (30, 30, 200), -1)
        pos, neg = self._vis_noise
        k = index % NOISE_BANK_SIZE
        cv2.add(img, pos[k], dst=img)
        cv2.subtract(img, neg[k], dst=img)
        return img

    def render_thermal(self, index: int) -> np.ndarray:
        """(H, W) uint8 thermal view of frame ``index`` (bright = warm)."""
        img = self._ir_bg.copy()
        for pose in self._pedestrian_poses(index):
            self._draw_pedestrian(img, pose, T_BODY, T_HEAD)
        x, y = self._car_pose(index)
        w, h = self.width, self.height
        car_w, car_h = int(0.16 * w), int(0.07 * h)
        self._draw_car_shape(img, x, y, T_CAR_BODY, T_CAR_BODY - 10)
        cv2.rectangle(img, (x + car_w * 3 // 4, y + 1), (x + car_w - 1, y + car_h * 2 // 3), T_ENGINE, -1)  # hood
        for wx in (x + car_w // 5, x + car_w * 4 // 5):
            cv2.circle(img, (wx, y + car_h), max(3, car_h // 3), T_WHEEL, -1)
        cv2.ellipse(img, (x - car_w // 12, y + car_h * 5 // 6), (max(3, car_w // 8), max(2, car_h // 5)),
                    0, 0, 360, T_EXHAUST, -1)
        # Optics and detector: slight blur, then temporal noise.
        img = cv2.GaussianBlur(img, (5, 5), 1.1)
        pos, neg = self._ir_noise
        k = (index * 7 + 3) % NOISE_BANK_SIZE  # a different cycle from the colour noise
        cv2.add(img, pos[k], dst=img)
        cv2.subtract(img, neg[k], dst=img)
        return img

    def thermal_to_raw16(self, thermal8: np.ndarray) -> np.ndarray:
        """Map the 8-bit thermal view to plausible 16-bit radiometric counts (about 7000..9000)."""
        return (7000 + thermal8.astype(np.uint16) * 8).astype(np.uint16)


def _split_signed(noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a signed noise field into uint8 positive and negative parts for saturating add/subtract."""
    clipped = np.clip(np.rint(noise), -255, 255)
    return np.maximum(clipped, 0).astype(np.uint8), np.maximum(-clipped, 0).astype(np.uint8)


class _DemoSource(FrameSource):
    """Shared pacing and bookkeeping of the two demo sources.

    Args:
        scene: the shared :class:`DemoScene` (one clock for both views).
        frames: number of frames before end of stream; None = endless.
        realtime: pace frames at the scene rate (like a camera); False delivers them as fast as asked.
        time_offset_s: constant offset of this sensor's timestamps (the two cameras are not triggered together).
        jitter_s: amplitude of the deterministic timestamp jitter.
    """

    is_live = True
    _kind = ""

    def __init__(self, scene: DemoScene, frames: int | None = None, realtime: bool = True,
                 time_offset_s: float = 0.0, jitter_s: float = 0.002) -> None:
        if frames is not None and frames < 0:
            raise SourceError(f"demo frame count must be >= 0, got {frames}")
        self.scene, self.frames, self.realtime = scene, frames, realtime
        self.time_offset_s, self.jitter_s = time_offset_s, jitter_s
        self._index = 0
        self._opened = False
        self._t0 = 0.0
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        s = self.scene
        return f"built-in demo {self._kind} {s.width}x{s.height} @ {s.fps:g} fps (seed {s.seed})"

    def open(self) -> None:
        self._opened = True
        self._t0 = time.monotonic()

    def close(self) -> None:
        self._opened = False

    def _timestamp(self, index: int) -> float:
        # Deterministic jitter from a hash of the index: a few milliseconds, different per sensor.
        wobble = np.sin(index * 12.9898 + self.time_offset_s * 1000.0) * self.jitter_s
        return self.scene.time_of(index) + self.time_offset_s + float(wobble)

    def read(self) -> Frame | None:
        if not self._opened:
            self.open()
        with self._lock:
            index = self._index
            if self.frames is not None and index >= self.frames:
                return None
            self._index += 1
        if self.realtime:
            delay = self._t0 + self.scene.time_of(index) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return Frame(self._render(index), self._timestamp(index), index, {"source": "demo"})

    def _render(self, index: int) -> np.ndarray:
        raise NotImplementedError


class DemoThermalSource(_DemoSource):
    """Thermal half of the demo: (H, W) uint8, or uint16 raw counts with ``raw16=True``."""

    _kind = "thermal"

    def __init__(self, scene: DemoScene, raw16: bool = False, time_offset_s: float = 0.003, **kw) -> None:
        super().__init__(scene, time_offset_s=time_offset_s, **kw)
        self.raw16 = raw16

    def _render(self, index: int) -> np.ndarray:
        img = self.scene.render_thermal(index)
        return self.scene.thermal_to_raw16(img) if self.raw16 else img


class DemoRgbSource(_DemoSource):
    """Colour half of the demo: (H, W, 3) uint8 BGR."""

    _kind = "colour"

    def _render(self, index: int) -> np.ndarray:
        return self.scene.render_visible(index)


def open_demo_pair(width: int = 640, height: int = 480, fps: float = 25.0, seed: int = 0,
                   frames: int | None = None, realtime: bool = True, raw16: bool = False
                   ) -> tuple[DemoThermalSource, DemoRgbSource]:
    """The two demo sources on one shared scene (thermal first, as everywhere in the app)."""
    scene = DemoScene(width, height, fps, seed)
    return (DemoThermalSource(scene, raw16=raw16, frames=frames, realtime=realtime),
            DemoRgbSource(scene, frames=frames, realtime=realtime))
