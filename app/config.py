"""The application's one configuration: dataclasses mirroring ``configs/default.yaml``, validated at start-up.

Every problem is a :class:`app.errors.ConfigError` whose message names the file, the dotted key and
what is wrong (unknown key, wrong type, out of range, not one of the choices, missing file), e.g.::

    configs/mine.yaml: fusion.methd: unknown key (known keys in 'fusion': method, fallbacks, ...)

Command-line flags override the file through :func:`apply_overrides` with the same dotted keys.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

GAIN_MODES = ("percentile", "minmax", "fixed", "none")  # as app.gain.MODES (config imports neither cv2 nor gain)
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


def _opt(default, *, choices=None, range=None, must_exist=False, doc=""):
    """A dataclass field with validation metadata (allowed choices, numeric range, path that must exist)."""
    meta = {"choices": choices, "range": range, "must_exist": must_exist, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DemoConfig:
    width: int = _opt(640, range=(64, 4096))
    height: int = _opt(480, range=(48, 4096))
    fps: float = _opt(25.0, range=(1.0, 240.0))
    seed: int = _opt(0)
    thermal_16bit: bool = _opt(False, doc="deliver raw 16-bit thermal counts, like a radiometric camera")


@dataclass
class SourcesConfig:
    ir: str = _opt("demo", doc="'demo', a camera index/URL/GStreamer pipeline, a video file or an image folder")
    rgb: str = _opt("demo")
    tolerance_ms: float = _opt(20.0, range=(0.0, 1000.0), doc="largest timestamp gap of a pair")
    reconnect: bool = _opt(True)
    realtime: bool = _opt(True, doc="pace files and the demo at their frame rate (False: as fast as possible)")
    demo: DemoConfig = field(default_factory=DemoConfig)


@dataclass
class GainConfig:
    mode: str = _opt("percentile", choices=GAIN_MODES, doc="thermal normalisation (app.gain.GainControl)")
    low: float = _opt(1.0, doc="percentile (0-100) in percentile mode, raw count in fixed mode")
    high: float = _opt(99.0)
    clahe: bool = _opt(False)
    auto: bool = _opt(False)


@dataclass
class FusionConfig:
    method: str = _opt("m2pn_rt")
    fallbacks: list[str] = _opt(["gff", "average"])
    backend: str = _opt("auto", choices=("auto", "cpu", "cuda", "tensorrt"))
    weights: str | None = _opt(None, must_exist=True, doc="M2PN weights for m2pn / m2pn_rt; null = engine/weights/m2pn.pt")
    palette: str = _opt("ironbow", choices=("ironbow", "rainbow", "white_hot", "black_hot"))
    video_mode: str = _opt("auto", choices=("auto", "on", "off"),
                           doc="temporal stability (gain jumps absorbed, flicker damped); auto = on for cameras, "
                               "video files, replays and the demo, off for image folders")
    entities: list[str] = _opt([], doc="EGMT entity names while detection is off, e.g. [person, car]; empty = all the model knows")


@dataclass
class DetectorConfig:
    model: str | None = _opt(None, must_exist=True, doc="YOLOv5 ONNX export; null = no detections")
    names: str | None = _opt(None, must_exist=True, doc="class names file (one per line); null = from the model or COCO")
    threshold: float = _opt(0.25, range=(0.0, 1.0))
    iou: float = _opt(0.45, range=(0.0, 1.0))
    classes: list[str] = _opt([], doc="only keep these class names; empty = all")
    enabled: bool = _opt(True, doc="draw the overlay (the viewer's D key toggles it)")


@dataclass
class RecordingConfig:
    path: str | None = _opt(None, doc="fused video, .mp4 (fragmented), .mkv or .ts, e.g. out/night.mp4 "
                                      "(segments OUT_000.mp4, ...; never overwritten)")
    session_dir: str | None = _opt(None, doc="also keep the raw synchronised pair here for exact replay")
    segment_seconds: float = _opt(60.0, range=(1.0, 86400.0))
    codec: str = _opt("auto", choices=("auto", "h264", "mp4v", "mjpg"))
    fps: float = _opt(25.0, range=(1.0, 240.0))


@dataclass
class ViewerConfig:
    show_sources: bool = _opt(True, doc="show the thermal and colour inputs beside the fused view")
    width: int = _opt(1280, range=(320, 7680))
    height: int = _opt(800, range=(240, 4320))
    snapshot_dir: str = _opt("snapshots")


@dataclass
class AppConfig:
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    calibration: str | None = _opt(None, must_exist=True, doc="calibration YAML; null = resize thermal to the RGB size")
    gain: GainConfig = field(default_factory=GainConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    viewer: ViewerConfig = field(default_factory=ViewerConfig)


# ----- validation ---------------------------------------------------------------------------------------
def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args) + " (or null)"
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp, key: str, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where numbers are expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}{key}: expected {_type_name(tp)}, got {value!r}")
        return [_coerce(v, typing.get_args(tp)[0], f"{key}[{i}]", where) for i, v in enumerate(value)]
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (tp is str and isinstance(value, (str, int)) and not isinstance(value, bool))  # camera index 0
    )
    if not ok:
        raise ConfigError(f"{where}{key}: expected {_type_name(tp)}, got {value!r}")
    return float(value) if tp is float else str(value) if tp is str else value


def _build(cls, data: Any, prefix: str, where: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}{prefix.rstrip('.') or 'top level'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            known = ", ".join(fields)
            section = f"'{prefix.rstrip('.')}'" if prefix else "the top level"
            raise ConfigError(f"{where}{prefix}{key}: unknown key (known keys in {section}: {known})")
    values = {}
    for name, f in fields.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, data.get(name), f"{prefix}{name}.", where)
        elif name in data:
            values[name] = _coerce(data[name], tp, prefix + name, where)
    obj = cls(**values)
    _check_fields(obj, prefix, where)
    return obj


def _check_fields(obj, prefix: str, where: str) -> None:
    for f in dataclasses.fields(obj):
        value, meta = getattr(obj, f.name), f.metadata
        key = prefix + f.name
        if value is None or dataclasses.is_dataclass(value):
            continue
        if meta.get("choices") and value not in meta["choices"]:
            raise ConfigError(f"{where}{key}: {value!r} is not one of {', '.join(meta['choices'])}")
        if meta.get("range"):
            lo, hi = meta["range"]
            if not lo <= value <= hi:
                raise ConfigError(f"{where}{key}: {value} is out of range [{lo}, {hi}]")
        if meta.get("must_exist") and not Path(value).expanduser().exists():
            raise ConfigError(f"{where}{key}: file not found: {value}")


def validate(cfg: AppConfig, where: str = "") -> AppConfig:
    """Re-check every field (after command-line overrides) and the cross-field rules."""
    _build(AppConfig, to_dict(cfg), "", where)
    if cfg.gain.mode == "percentile":
        for key in ("low", "high"):
            value = getattr(cfg.gain, key)
            if not 0.0 <= value <= 100.0:
                raise ConfigError(f"{where}gain.{key}: {value} is out of range [0.0, 100.0] (a percentile)")
    if cfg.gain.low >= cfg.gain.high:
        raise ConfigError(f"{where}gain.low ({cfg.gain.low}) must be below gain.high ({cfg.gain.high})")
    if (cfg.sources.ir == "demo") != (cfg.sources.rgb == "demo"):
        raise ConfigError(f"{where}sources: 'demo' must be used for both ir and rgb (got ir={cfg.sources.ir!r}, "
                          f"rgb={cfg.sources.rgb!r})")
    return cfg


def config_from_dict(data: dict | None, where: str = "") -> AppConfig:
    cfg = _build(AppConfig, data or {}, "", where)
    return validate(cfg, where)


def load_config(path: str | Path | None = None) -> AppConfig:
    """Read and validate a YAML config; ``None`` reads ``configs/default.yaml`` (or uses defaults if absent)."""
    if path is None:
        if not DEFAULT_CONFIG_PATH.is_file():
            return AppConfig()
        path = DEFAULT_CONFIG_PATH
    path = Path(path)
    where = f"{path}: "
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return config_from_dict(data, where)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def apply_overrides(cfg: AppConfig, overrides: dict[str, Any]) -> AppConfig:
    """Return a validated copy of ``cfg`` with dotted-key overrides applied (None values are ignored).

    Example: ``apply_overrides(cfg, {"fusion.method": "gff", "recording.path": "out.mp4"})``.
    """
    data = to_dict(cfg)
    for key, value in overrides.items():
        if value is None:
            continue
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"override {key}: unknown key")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"override {key}: unknown key")
        node[parts[-1]] = value
    return config_from_dict(data, "command line: ")
