"""engine.temporal (video mode) on synthetic sequences with known motion and known gain jumps; the flicker
and lag measures; the pipeline's video-mode stage."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.errors import FusionInputError
from engine.metrics.flicker import flicker, motion_lag
from engine.temporal import ThermalGainStabilizer, VideoMode, VideoModeSettings, fit_gain

H, W = 120, 160


def scene(rng):
    """(H, W) uint8 textured background, levels 60..180."""
    base = cv2.GaussianBlur(rng.random((H, W)).astype(np.float32), (0, 0), 3)
    base = (base - base.min()) / (base.max() - base.min())
    return (60 + 120 * base).astype(np.uint8)


def with_person(background, x, level=240):
    """A bright 'person' block (30x16 px) at column x."""
    f = background.copy()
    f[40:70, x:x + 16] = level
    return f


def noisy(img, rng, sigma=2.0):
    return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_gain_fit_recovers_a_known_remapping(rng):
    a = scene(rng).astype(np.float32)
    b = 1.5 * a - 40  # 60..180 -> 50..230: no clipping
    g, o, spread = fit_gain(a, b)
    assert g == pytest.approx(1.5, rel=0.02) and o == pytest.approx(-40, abs=3) and spread < 1.0


def test_thermal_gain_jumps_are_absorbed_then_fade(rng):
    bg = scene(rng)
    stab = ThermalGainStabilizer(VideoModeSettings(gain_decay=0.05))
    frames = [noisy(bg, rng) for _ in range(5)]
    jumped = [np.clip(1.8 * f.astype(np.float32) - 40, 0, 255).astype(np.uint8) for f in (noisy(bg, rng) for _ in range(40))]
    outs = [stab(f) for f in frames + jumped]
    before = outs[4].astype(np.float32).mean()
    # right after the jump the shown level stays where it was (raw jumps by ~+45 levels)
    assert abs(outs[5].astype(np.float32).mean() - before) < 4.0
    assert jumped[0].astype(np.float32).mean() - before > 35
    # ... and a lasting change shows within ~1/decay frames, as a fade (no step above 6 levels a frame)
    steps = [abs(outs[k].astype(np.float32).mean() - outs[k - 1].astype(np.float32).mean()) for k in range(6, 45)]
    assert max(steps) < 6.0
    assert abs(outs[-1].astype(np.float32).mean() - jumped[-1].astype(np.float32).mean()) < 8.0


def test_static_noise_is_damped_and_a_moving_person_does_not_lag(rng):
    bg = scene(rng)
    xs = [10 + 6 * t for t in range(20)]  # 6 px per frame to the right
    ir = [noisy(with_person(bg, x), rng) for x in xs]
    vi = [cv2.cvtColor(noisy(bg, rng), cv2.COLOR_GRAY2BGR) for _ in xs]
    fused = [cv2.addWeighted(i, 0.5, cv2.cvtColor(v, cv2.COLOR_BGR2GRAY), 0.5, 0) for i, v in zip(ir, vi)]
    video = VideoMode()
    out = [video.process(i, v, lambda i2, v2, k=k: fused[k]) for k, (i, v) in enumerate(zip(ir, vi))]
    off, on = flicker(fused, ir, vi), flicker(out, ir, vi)
    assert on["ratio_max"] < 0.8 * off["ratio_max"]  # the background's noise is averaged
    lag = motion_lag(out, fused, ir, vi)
    assert lag["lag"] is not None and lag["lag"] < 0.1  # the person is shown where it is now
    assert lag["corr_now"] > lag["corr_prev"]
    # no ghost: where the person was two frames ago the output is background again
    t = 15
    ghost = out[t][40:70, xs[t - 2]:xs[t - 2] + 6].astype(np.float32).mean()
    assert ghost < fused[t][40:70, xs[t - 2]:xs[t - 2] + 6].astype(np.float32).mean() + 10


def test_a_cut_resets_the_filter(rng):
    a, b = scene(rng), 255 - scene(rng)
    video = VideoMode()
    for _ in range(5):
        video.process(a, cv2.cvtColor(a, cv2.COLOR_GRAY2BGR), lambda i, v: i)
    out = video.process(b, cv2.cvtColor(b, cv2.COLOR_GRAY2BGR), lambda i, v: i)
    assert video.temporal.cuts == 1
    assert np.abs(out.astype(np.int16) - b.astype(np.int16)).mean() < 20  # the new scene, not a blend


def test_video_mode_checks_its_inputs(rng):
    video = VideoMode()
    with pytest.raises(FusionInputError, match="stabilize_thermal"):
        video.filter(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(FusionInputError, match="uint8"):
        video.stabilize_thermal(np.zeros((H, W), np.float32))
    with pytest.raises(FusionInputError, match="min_weight"):
        VideoMode(VideoModeSettings(min_weight=0.0))


def test_pipeline_runs_the_video_mode_stage():
    from app.demo import open_demo_pair
    from app.pipeline import FusionPipeline, PipelineOptions

    ir, rgb = open_demo_pair(160, 120, frames=6, realtime=False)
    pipeline = FusionPipeline.from_sources(ir, rgb, PipelineOptions(method="average", video_mode=True, fallbacks=()),
                                           lockstep=True)
    frames = []
    pipeline.add_sink(frames.append)
    summary = pipeline.run(max_frames=6)
    assert summary["frames"] == 6 and pipeline.video_mode
    assert all(f.timings["video"] > 0 for f in frames)
    pipeline.set_video_mode(False)
    assert not pipeline.video_mode


def test_video_mode_auto_is_off_for_still_image_folders_and_on_for_video(tmp_path):
    from app.assembly import video_mode_for
    from app.capture import StereoCapture
    from app.config import config_from_dict
    from app.demo import open_demo_pair
    from app.sources.folder import ImageFolderSource

    auto = config_from_dict({})
    stills = StereoCapture(ImageFolderSource(tmp_path), ImageFolderSource(tmp_path))
    demo = StereoCapture(*open_demo_pair(64, 48, frames=2, realtime=False))
    assert auto.fusion.video_mode == "auto"
    assert not video_mode_for(auto, stills) and video_mode_for(auto, demo)
    assert video_mode_for(config_from_dict({"fusion": {"video_mode": "on"}}), stills)
    assert not video_mode_for(config_from_dict({"fusion": {"video_mode": "off"}}), demo)


def test_pipeline_resets_the_video_history_on_request():
    from app.demo import open_demo_pair
    from app.pipeline import FusionPipeline, PipelineOptions

    ir, rgb = open_demo_pair(160, 120, frames=4, realtime=False)
    pipeline = FusionPipeline.from_sources(ir, rgb, PipelineOptions(method="average", video_mode=True, fallbacks=()),
                                           lockstep=True)
    weights = []
    pipeline.add_sink(lambda f: weights.append(pipeline._video.temporal.last_weight))
    pipeline.reset_video_history()  # before frame 0: nothing to forget yet
    pipeline.run(max_frames=2)
    assert weights[0] is None and weights[1] is not None  # frame 1 was blended with frame 0
    pipeline.reset_video_history()
    pipeline.run(max_frames=3)
    assert weights[2] is None  # after the reset: the frame stands alone
