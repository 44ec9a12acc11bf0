"""Assembly: the pair source and the :class:`~app.pipeline.FusionPipeline` that a configuration asks for.

``run_app.py`` (headless and viewer) builds everything through here::

    capture = create_capture(cfg, replay=None, on_status=print)   # StereoCapture or SessionReplay
    pipeline = pipeline_from_config(cfg, capture, on_status=print)  # method, gain, registrar, detector

The running pipeline itself (threads, stages, sinks) lives in :mod:`app.pipeline`; the pair sources in
:mod:`app.capture` and :mod:`app.session`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .capture import StereoCapture
from .errors import AppError, ConfigError
from .pipeline import FusionPipeline, PairSource, PipelineOptions, first_line

def create_capture(cfg, replay: str | None = None, on_status: Callable[[str], None] | None = None,
                   demo_frames: int | None = None) -> PairSource:
    """The pair source the config asks for: a replayed session, the built-in demo, or two real sources.

    Args:
        cfg: :class:`app.config.AppConfig`.
        replay: a session folder recorded with ``--record-session`` (overrides ``cfg.sources``).
        demo_frames: end the demo after this many frames (None = endless).
    """
    if replay is not None:
        if not Path(replay).is_dir():
            raise AppError(f"replay session folder not found: {replay}")
        from .session import SessionReplay

        return SessionReplay(replay, speed=1.0 if cfg.sources.realtime else 0.0, loop=False)
    src = cfg.sources
    if src.ir == "demo":
        from .demo import open_demo_pair

        d = src.demo
        ir_source, rgb_source = open_demo_pair(d.width, d.height, d.fps, d.seed, frames=demo_frames,
                                               realtime=src.realtime, raw16=d.thermal_16bit)
    else:
        from .sources import open_source

        ir_source, rgb_source = open_source(src.ir), open_source(src.rgb)
    return StereoCapture(ir_source, rgb_source, tolerance_s=src.tolerance_ms / 1000.0, reconnect=src.reconnect,
                         on_status=on_status, realtime=src.realtime)


def create_gain(cfg):
    """``app.gain.GainControl`` from ``cfg.gain``."""
    from .gain import GainControl

    g = cfg.gain
    try:
        return GainControl(mode=g.mode, low=g.low, high=g.high, clahe=g.clahe, auto=g.auto)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"gain: {exc}") from None


def create_registrar(cfg):
    """A ``calibration.Registrar`` for ``cfg.calibration``, or None (thermal is then resized)."""
    if not cfg.calibration:
        return None
    try:
        from calibration.calibration_file import load_calibration
        from calibration.registrar import Registrar
    except ImportError as exc:
        raise AppError(f"a calibration file was given but the calibration package cannot load it: {exc}") from None
    try:
        return CheckedRegistrar(Registrar(load_calibration(cfg.calibration)), cfg.calibration)
    except AppError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad calibration file is a user error: name it
        message = first_line(exc)
        raise AppError(message if str(cfg.calibration) in message else f"calibration file {cfg.calibration}: {message}") from None


class CheckedRegistrar:
    """A ``calibration.Registrar`` whose refusals (frames of another size than the calibration was made for)
    stop the run as user errors naming the file, instead of internal errors with a traceback."""

    def __init__(self, registrar, path) -> None:
        self.registrar, self.path = registrar, path

    def __getattr__(self, name: str):
        return getattr(self.registrar, name)

    def register(self, ir, rgb):
        """(H, W) thermal and (H, W, 3) colour -> both on one grid (see ``calibration.Registrar``)."""
        from calibration.errors import CalibrationError

        try:
            return self.registrar.register(ir, rgb)
        except CalibrationError as exc:
            raise AppError(f"calibration file {self.path}: {first_line(exc)}") from None


def create_detector(cfg):
    """A :class:`app.detector.YoloV5Detector` for ``cfg.detector``, or None when no model is configured."""
    d = cfg.detector
    if not d.model:
        return None
    from .detector import YoloV5Detector

    return YoloV5Detector(d.model, names_path=d.names, conf_threshold=d.threshold, iou_threshold=d.iou,
                          classes=d.classes or None)


def method_and_fallbacks(cfg) -> tuple[str, tuple[str, ...]]:
    """The fusion method to build and what may replace it.

    Only the default method falls back (``fusion.fallbacks``, said in one status line): a method or a
    weights file the user chose (flag or config) is built as asked, or the run stops with the reason.
    Unknown names are configuration errors.
    """
    from engine import available_methods

    from .config import FusionConfig

    available = available_methods()
    named = [("fusion.method", cfg.fusion.method)] + [("fusion.fallbacks", name) for name in cfg.fusion.fallbacks]
    for key, name in named:
        if name not in available:
            raise ConfigError(f"{key}: unknown fusion method {name!r}; available: {', '.join(available)}")
    if cfg.fusion.method != FusionConfig().method or cfg.fusion.weights:
        return cfg.fusion.method, ()
    return cfg.fusion.method, tuple(cfg.fusion.fallbacks)


def video_mode_for(cfg, capture: PairSource) -> bool:
    """``fusion.video_mode``: on / off as given; ``auto``: on unless the frames are still images (folders)."""
    mode = cfg.fusion.video_mode
    if mode != "auto":
        return mode == "on"
    from .sources.folder import ImageFolderSource

    sources = list(getattr(capture, "sources", {}).values())
    sources += [getattr(capture, name, None) for name in ("ir_source", "rgb_source")]
    return not any(isinstance(s, ImageFolderSource) for s in sources)


def pipeline_from_config(cfg, capture: PairSource, on_status: Callable[[str], None] | None = None,
                         detector_async: bool = True) -> FusionPipeline:
    """A :class:`FusionPipeline` wired as ``cfg`` says (method + fallbacks, gain, registration, detector)."""
    method, fallbacks = method_and_fallbacks(cfg)
    options = PipelineOptions(method=method, fallbacks=fallbacks,
                              backend=cfg.fusion.backend, weights=cfg.fusion.weights, palette=cfg.fusion.palette,
                              show_detections=cfg.detector.enabled, detector_async=detector_async,
                              entities=tuple(cfg.fusion.entities), video_mode=video_mode_for(cfg, capture))
    pipeline = FusionPipeline(capture, options, gain=create_gain(cfg), registrar=create_registrar(cfg),
                              detector=create_detector(cfg), on_status=on_status)
    if cfg.calibration is None:
        pipeline.status("no calibration file: thermal will be resized to the colour image, not registered")
    if pipeline.detector is None:
        pipeline.status("no detector model configured (set detector.model or --detector MODEL.onnx)")
    return pipeline
