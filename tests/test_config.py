"""Config validation: the shipped default loads; every kind of mistake gets a message naming the key."""

from __future__ import annotations

import pytest

from app.config import DEFAULT_CONFIG_PATH, AppConfig, apply_overrides, config_from_dict, load_config
from app.errors import ConfigError


def test_default_config_file_loads_and_matches_the_dataclass_defaults():
    cfg = load_config(DEFAULT_CONFIG_PATH)
    assert cfg == AppConfig()  # the YAML documents the defaults; they must not drift apart
    assert cfg.fusion.method == "m2pn_rt" and cfg.fusion.fallbacks == ["gff", "average"]
    assert cfg.sources.ir == cfg.sources.rgb == "demo"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"fusion": {"methd": "gff"}}, r"fusion\.methd: unknown key \(known keys in 'fusion': method"),
        ({"colour": 1}, r"colour: unknown key .*the top level"),
        ({"gain": {"low": "one"}}, r"gain\.low: expected a number, got 'one'"),
        ({"viewer": {"show_sources": "yes"}}, r"viewer\.show_sources: expected true/false"),
        ({"sources": {"demo": {"width": 10}}}, r"sources\.demo\.width: 10 is out of range \[64, 4096\]"),
        ({"detector": {"threshold": 1.5}}, r"detector\.threshold: 1\.5 is out of range"),
        ({"recording": {"codec": "divx"}}, r"recording\.codec: 'divx' is not one of auto, h264, mp4v, mjpg"),
        ({"detector": {"model": "missing/yolo.onnx"}}, r"detector\.model: file not found: missing/yolo\.onnx"),
        ({"calibration": "nowhere.yaml"}, r"calibration: file not found"),
        ({"fusion": ["gff"]}, r"fusion: expected a mapping"),
        ({"fusion": {"fallbacks": "gff"}}, r"fusion\.fallbacks: expected a list of a string"),
        ({"gain": {"low": 60, "high": 40}}, r"gain\.low \(60\.0\) must be below gain\.high"),
        ({"gain": {"high": 150}}, r"gain\.high: 150\.0 is out of range \[0\.0, 100\.0\] \(a percentile\)"),
        ({"gain": {"mode": "log"}}, r"gain\.mode: 'log' is not one of percentile, minmax, fixed, none"),
        ({"sources": {"ir": "demo", "rgb": "cam.mp4"}}, r"'demo' must be used for both"),
    ],
)
def test_invalid_values_are_named(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data, "my.yaml: ")


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("fusion:\n  method: [gff\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML at line"):
        load_config(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("fusion:\n  method: gff\n  palete: ironbow\n")
    with pytest.raises(ConfigError, match=r"wrong\.yaml: fusion\.palete: unknown key"):
        load_config(wrong)


def test_fixed_gain_takes_raw_counts():
    cfg = config_from_dict({"gain": {"mode": "fixed", "low": 7000, "high": 9000}})
    assert (cfg.gain.low, cfg.gain.high) == (7000.0, 9000.0)


def test_gain_modes_match_the_gain_control():
    from app.config import GAIN_MODES
    from app.gain import MODES

    assert GAIN_MODES == MODES


def test_partial_file_keeps_defaults_and_ints_are_accepted_for_numbers(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("fusion:\n  method: gff\nsources:\n  ir: 0\n  rgb: 1\n  tolerance_ms: 15\n")
    cfg = load_config(path)
    assert cfg.fusion.method == "gff" and cfg.fusion.fallbacks == ["gff", "average"]
    assert cfg.sources.ir == "0" and cfg.sources.rgb == "1"  # camera indices become source specs
    assert cfg.sources.tolerance_ms == 15.0 and isinstance(cfg.sources.tolerance_ms, float)


def test_command_line_overrides_are_validated_too(tmp_path):
    cfg = AppConfig()
    out = apply_overrides(cfg, {"fusion.method": "average", "recording.path": str(tmp_path / "x.mp4"),
                                "detector.threshold": None})
    assert out.fusion.method == "average" and out.recording.path.endswith("x.mp4")
    assert out.detector.threshold == cfg.detector.threshold  # None = flag not given
    assert cfg.fusion.method == "m2pn_rt"  # the original is untouched
    with pytest.raises(ConfigError, match=r"command line: detector\.model: file not found"):
        apply_overrides(cfg, {"detector.model": str(tmp_path / "missing.onnx")})
    with pytest.raises(ConfigError, match="override fusion.nope: unknown key"):
        apply_overrides(cfg, {"fusion.nope": 1})
