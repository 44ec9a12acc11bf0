"""Automatic registration on real pairs: it recovers a known warp, it is checked before it is trusted
(refused with one line and exit 3 when implausible or not better), and `check` reports the same score.

The known warp is applied to the visible image of a TNO pair; the thermal -> colour mapping of the new
pair is W @ B, B the pair's own registration (TNO pairs are several pixels off, so B is estimated by the
same fit on the unwarped pair over the same colour content). bench/calibration_faults.py runs this on
all 25 TNO pairs and the 20 MSRS ir_warp pairs (docs/reliability_calibration.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration import CalibrationError, auto_align, corner_rms, load_calibration
from calibration.frames import load_pairs
from calibration.score import AlignmentScorer, Bounds, geometry_problems
from calibration.synthetic import similarity_about_center

REPO = Path(__file__).resolve().parents[1]


def _known_warp(size):
    w, h = size
    return similarity_about_center((w, h), 1.05, 3.0, (0.04 * w, 0.0))


def _visible_warped(tno_dir, name):
    ir = cv2.imread(str(tno_dir / "ir" / name), cv2.IMREAD_GRAYSCALE)
    vi = cv2.imread(str(tno_dir / "vi" / name), cv2.IMREAD_COLOR)
    h, w = vi.shape[:2]
    warp = _known_warp((w, h))
    return ir, vi, cv2.warpPerspective(vi, warp, (w, h)), warp


@pytest.mark.slow
def test_auto_recovers_a_known_warp_of_the_visible_image(tno_dir):
    ir, vi, vi_new, warp = _visible_warped(tno_dir, "12.png")
    h, w = vi.shape[:2]
    result = auto_align(ir, vi_new)
    shown = cv2.warpPerspective(cv2.warpPerspective(np.full((h, w), 255, np.uint8), warp, (w, h)),
                                np.linalg.inv(warp), (w, h), flags=cv2.INTER_NEAREST)
    reference = auto_align(ir, vi, rgb_mask=shown).homography
    error = corner_rms(warp @ reference, result.homography, (w, h))
    assert error < 1.0, f"corner RMS {error:.2f} px against the applied warp"
    assert corner_rms(warp, result.homography, (w, h)) < 25.0  # and near the warp itself (TNO's own offsets)


def test_score_peaks_at_the_registration_of_an_aligned_pair(shared_data):
    folder = shared_data / "msrs" / "test"
    ir = cv2.imread(str(folder / "ir" / "00055D.png"), cv2.IMREAD_GRAYSCALE)
    vi = cv2.imread(str(folder / "vi" / "00055D.png"), cv2.IMREAD_COLOR)
    scorer = AlignmentScorer([ir], [vi])
    aligned = scorer.score(np.eye(3))
    for dx, dy in ((6, 0), (0, 6), (12, 12)):
        shifted = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1.0]])
        assert scorer.score(shifted) < aligned - 0.02, (dx, dy)
    assert 0.1 < aligned < 1.0


def test_implausible_geometry_is_named():
    size = (640, 480)
    # the result the issue saw on an already aligned pair: a y-scale of 2.18
    problems = geometry_problems(np.diag([1.0, 2.18, 1.0]), size, size, Bounds())
    assert any("scale" in p for p in problems) and any("corner moves" in p for p in problems)
    sheared = np.array([[1.0, 0.3, 0], [0, 1.0, 0], [0, 0, 1.0]])
    assert any("shear" in p for p in geometry_problems(sheared, size, size, Bounds()))
    plausible = similarity_about_center(size, 1.05, 3.0, (25.6, 0.0))
    assert geometry_problems(plausible, size, size, Bounds()) == []
    assert any("scale 1.050" in p for p in geometry_problems(plausible, size, size, Bounds(max_scale=1.02)))


@pytest.mark.slow
def test_auto_cli_accepts_a_real_pair_and_check_reports_the_same_score(tno_dir, tmp_path):
    ir, _, vi_new, _ = _visible_warped(tno_dir, "12.png")
    cv2.imwrite(str(tmp_path / "ir.png"), ir)
    cv2.imwrite(str(tmp_path / "vi.png"), vi_new)
    out = tmp_path / "cal.yaml"
    proc = subprocess.run([sys.executable, "-m", "calibration", "auto", "--ir", str(tmp_path / "ir.png"),
                           "--rgb", str(tmp_path / "vi.png"), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "accepted: held-out score" in proc.stdout
    cal = load_calibration(out)
    assert cal.method == "auto-affine" and cal.extra["score_after"] > cal.extra["score_before"] + 0.01
    png = tmp_path / "check.png"
    proc = subprocess.run([sys.executable, "-m", "calibration", "check", str(out), "--ir", str(tmp_path / "ir.png"),
                           "--rgb", str(tmp_path / "vi.png"), "--out", str(png)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("alignment score"))
    before, after = (float(v) for v in line.replace(",", " ").split() if v[0].isdigit() and "." in v)
    assert after > before + 0.05, line
    assert cv2.imread(str(png)).shape[1] == 2 * vi_new.shape[1]


@pytest.mark.slow
def test_auto_cli_refuses_images_of_two_different_scenes(tno_dir, tmp_path):
    out = tmp_path / "cal.yaml"
    proc = subprocess.run([sys.executable, "-m", "calibration", "auto", "--ir", str(tno_dir / "ir" / "17.png"),
                           "--rgb", str(tno_dir / "vi" / "21.png"), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: refused, ") and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and not out.exists()


def test_auto_rejects_tiny_images():
    with pytest.raises(CalibrationError, match="too small"):
        auto_align(np.zeros((20, 20), np.uint8), np.zeros((20, 20, 3), np.uint8))


def test_frames_come_from_videos_and_folders(shared_data, tmp_path):
    videos = shared_data / "m3svd" / "videos"
    name = sorted((videos / "ir").glob("*.mp4"))[0].name
    pairs = load_pairs(None, None, str(videos / "ir" / name), str(videos / "vi" / name), 4)
    assert len(pairs) == 4 and pairs[0][0].shape[:2] == pairs[0][1].shape[:2] == (480, 640)
    assert not np.array_equal(pairs[0][1], pairs[-1][1])  # spread over the video, not one frame four times
    for sub in ("ir", "vi"):
        (tmp_path / sub).mkdir()
        for i in range(5):
            cv2.imwrite(str(tmp_path / sub / f"{i:03d}.png"), np.full((64, 80), 40 * i, np.uint8))
    pairs = load_pairs(str(tmp_path / "ir"), str(tmp_path / "vi"), None, None, 3)
    assert [int(p[0][0, 0]) for p in pairs] == [0, 80, 160]
    with pytest.raises(CalibrationError, match="give both --ir-video and --rgb-video"):
        load_pairs(None, None, str(videos / "ir" / name), None, 4)
