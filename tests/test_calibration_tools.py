"""Calibration tools: point pairs (exact recovery), checkerboard (inverted, low-contrast thermal), CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration import corner_rms, fit_homography, load_calibration
from calibration.__main__ import main as cli
from calibration.calibration_file import apply_homography
from calibration.checkerboard import calibrate_from_boards, find_board

REPO = Path(__file__).resolve().parents[1]
H_TRUE = np.array([[1.9, 0.08, 25.0], [-0.06, 1.95, 14.0], [2e-5, -1e-5, 1.0]])  # thermal 320x256 -> colour 640x480


def test_points_recover_a_known_homography_exactly(rng):
    ir = rng.uniform([0, 0], [320, 256], (30, 2))
    rgb = apply_homography(H_TRUE, ir)
    fit = fit_homography(ir, rgb)
    assert fit.inlier_count == 30 and fit.rms_px < 1e-6
    assert np.allclose(fit.homography, H_TRUE / H_TRUE[2, 2], rtol=1e-6, atol=1e-9)


def test_points_survive_outliers(rng):
    ir = rng.uniform([0, 0], [320, 256], (40, 2))
    rgb = apply_homography(H_TRUE, ir) + rng.normal(0, 0.3, (40, 2))
    rgb[:5] += 60.0  # five mis-clicks
    fit = fit_homography(ir, rgb)
    assert not fit.inliers[:5].any() and fit.inlier_count == 35
    assert corner_rms(H_TRUE, fit.homography, (320, 256)) < 1.0


def test_points_cli_writes_a_file_and_reports(tmp_path, rng, capsys):
    ir = rng.uniform([0, 0], [320, 256], (8, 2))
    rgb = apply_homography(H_TRUE, ir)
    csv = tmp_path / "pairs.csv"
    csv.write_text("ir_x,ir_y,rgb_x,rgb_y\n" + "".join(f"{a},{b},{c},{d}\n" for (a, b), (c, d) in zip(ir, rgb)))
    assert cli(["points", "--pairs", str(csv), "--out", str(tmp_path / "cal.yaml"),
                "--ir-size", "320x256", "--rgb-size", "640x480"]) == 0
    out = capsys.readouterr().out
    assert "8 inliers" in out and "RMS 0.000 px" in out
    cal = load_calibration(tmp_path / "cal.yaml")
    assert cal.method == "points" and cal.ir_size == (320, 256)
    assert np.allclose(cal.homography, H_TRUE, rtol=1e-6, atol=1e-9)


def test_cli_errors_are_one_line_and_exit_nonzero(tmp_path):
    few = tmp_path / "few.csv"
    few.write_text("ir_x,ir_y,rgb_x,rgb_y\n1,2,3,4\n5,6,7,8\n9,1,2,3\n")
    cases = [
        (["points", "--pairs", str(few), "--out", str(tmp_path / "c.yaml")], "at least 4 point pairs"),
        (["points", "--pairs", str(tmp_path / "nope.csv"), "--out", "c.yaml"], "point pairs file not found"),
        (["auto", "--ir", str(tmp_path / "a.png"), "--rgb", str(tmp_path / "b.png"), "--out", "c.yaml"],
         "image not found"),
        (["check", str(tmp_path / "none.yaml"), "--ir", "a.png", "--rgb", "b.png", "--out", "x.png"],
         "calibration file not found"),
        (["checkerboard", "--ir", str(tmp_path), "--rgb", str(tmp_path), "--pattern", "9by6", "--out", "c.yaml"],
         "COLSxROWS"),
    ]
    for args, message in cases:
        proc = subprocess.run([sys.executable, "-m", "calibration", *args], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 2, args
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def _board_views(pattern=(8, 6), square=34):
    """Two synthetic views: colour board (normal contrast) and thermal board (inverted, weak, noisy)."""
    rng = np.random.default_rng(7)
    cols, rows = pattern
    board = np.full(((rows + 3) * square, (cols + 3) * square), 255, np.uint8)
    for r in range(rows + 1):
        for c in range(cols + 1):
            if (r + c) % 2 == 0:
                y, x = (r + 1) * square, (c + 1) * square
                board[y:y + square, x:x + square] = 0
    bh, bw = board.shape
    src = np.float32([[0, 0], [bw, 0], [bw, bh], [0, bh]])
    views = []
    for quad in ([[120, 80], [520, 100], [500, 400], [140, 380]], [[90, 120], [430, 60], [470, 350], [110, 420]]):
        p = cv2.getPerspectiveTransform(src, np.float32(quad))
        rgb_gray = cv2.warpPerspective(board, p, (640, 480), borderValue=200)
        rgb = cv2.cvtColor(rgb_gray, cv2.COLOR_GRAY2BGR)
        # thermal pixel q sees colour pixel H q; heated board: dark squares warm (bright), low contrast
        ir_gray = cv2.warpPerspective(rgb_gray, H_TRUE, (320, 256), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_AREA,
                                      borderValue=200)
        ir = 120.0 + (255.0 - ir_gray) / 255.0 * 18.0 + rng.normal(0, 1.0, ir_gray.shape)
        views.append((rgb, np.clip(ir, 0, 255).astype(np.uint8)))
    return views


def test_checkerboard_recovers_the_warp_from_inverted_low_contrast_thermal(tmp_path):
    views = _board_views()
    _, how = find_board(views[0][1], (8, 6), thermal=True)
    assert how != "not found"
    result = calibrate_from_boards([(f"v{i}", ir, rgb) for i, (rgb, ir) in enumerate(views)], (8, 6))
    assert result.views_used == ["v0", "v1"] and result.fit.inlier_count == 96
    assert result.fit.rms_px < 1.0
    assert corner_rms(H_TRUE, result.fit.homography, (320, 256)) < 1.5

    for name in ("ir", "rgb"):
        (tmp_path / name).mkdir()
    for i, (rgb, ir) in enumerate(views):
        cv2.imwrite(str(tmp_path / "ir" / f"view{i}.png"), ir)
        cv2.imwrite(str(tmp_path / "rgb" / f"view{i}.png"), rgb)
    cv2.imwrite(str(tmp_path / "ir" / "blank.png"), np.full((256, 320), 120, np.uint8))
    cv2.imwrite(str(tmp_path / "rgb" / "blank.png"), np.full((480, 640, 3), 200, np.uint8))
    proc = subprocess.run([sys.executable, "-m", "calibration", "checkerboard", "--ir", str(tmp_path / "ir"),
                           "--rgb", str(tmp_path / "rgb"), "--pattern", "8x6", "--out", str(tmp_path / "cal.yaml")],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "usable views: 2 of 3" in proc.stdout and "blank: skipped" in proc.stdout
    cal = load_calibration(tmp_path / "cal.yaml")
    assert cal.method == "checkerboard" and cal.ir_size == (320, 256) and cal.rgb_size == (640, 480)

    check = tmp_path / "check.png"
    assert cli(["check", str(tmp_path / "cal.yaml"), "--ir", str(tmp_path / "ir" / "view0.png"),
                "--rgb", str(tmp_path / "rgb" / "view0.png"), "--out", str(check)]) == 0
    overlay = cv2.imread(str(check))
    assert overlay.shape == (480, 1280, 3)
    assert np.any(np.all(overlay[:, :640] == (255, 0, 255), axis=2))  # thermal edges drawn


def test_checkerboard_without_a_board_fails_clearly():
    blank = [("b", np.full((256, 320), 120, np.uint8), np.full((480, 640, 3), 200, np.uint8))]
    with pytest.raises(Exception, match="no usable board view .*board not found in the colour image"):
        calibrate_from_boards(blank, (8, 6))


def test_corner_order_is_matched_when_the_thermal_board_starts_at_another_corner():
    from calibration.checkerboard import match_corner_order

    xs, ys = np.meshgrid(np.arange(8) * 20.0 + 50, np.arange(6) * 20.0 + 40)
    ir = np.column_stack([xs.ravel(), ys.ravel()])
    rgb = apply_homography(H_TRUE, ir)
    for shuffled in (ir[::-1], ir.reshape(6, 8, 2)[::-1].reshape(-1, 2), ir.reshape(6, 8, 2)[:, ::-1].reshape(-1, 2)):
        assert np.allclose(match_corner_order(shuffled, rgb, (8, 6)), ir)
