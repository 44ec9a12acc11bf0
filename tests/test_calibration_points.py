"""`calibration points` refuses point sets that cannot define a homography, with one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calibration import CalibrationError, fit_homography
from calibration.calibration_file import apply_homography

REPO = Path(__file__).resolve().parents[1]
H_TRUE = np.array([[1.9, 0.08, 25.0], [-0.06, 1.95, 14.0], [2e-5, -1e-5, 1.0]])

DEGENERATE = [
    ("collinear", [[10, 10], [60, 60], [110, 110], [160, 160]], "on one line"),
    ("nearly collinear", [[10, 10], [60, 60.4], [110, 109.7], [160, 160.2], [210, 210.1]], "on one line"),
    ("three of four on a line", [[0, 0], [100, 0], [200, 0], [50, 120]], "do not determine one homography"),
    ("duplicated", [[0, 0], [100, 0], [100, 100], [100, 100], [0, 100]], "are the same point"),
    ("too few", [[0, 0], [100, 0], [100, 100]], "at least 4 point pairs"),
]


@pytest.mark.parametrize("label, ir, message", DEGENERATE, ids=[d[0] for d in DEGENERATE])
def test_degenerate_point_sets_are_refused(label, ir, message):
    ir = np.array(ir, np.float64)
    with pytest.raises(CalibrationError, match=message):
        fit_homography(ir, apply_homography(H_TRUE, ir))


def test_four_points_in_general_position_are_enough():
    ir = np.array([[0, 0], [100, 0], [100, 100], [0, 90.0]])
    fit = fit_homography(ir, apply_homography(H_TRUE, ir))
    assert fit.rms_px < 1e-6 and np.allclose(fit.homography, H_TRUE, rtol=1e-6, atol=1e-9)


def test_mostly_inconsistent_clicks_are_refused(rng):
    ir = rng.uniform([0, 0], [320, 256], (10, 2))
    rgb = apply_homography(H_TRUE, ir)
    rgb[:6] += rng.uniform(-80, 80, (6, 2))  # six of ten clicks wrong
    with pytest.raises(CalibrationError, match="agree with one homography"):
        fit_homography(ir, rgb)


def test_cli_refuses_collinear_clicks_with_one_line_and_writes_nothing(tmp_path):
    ir = np.array([[10, 10], [60, 60], [110, 110], [160, 160.0]])
    rgb = apply_homography(H_TRUE, ir)
    csv = tmp_path / "pairs.csv"
    csv.write_text("ir_x,ir_y,rgb_x,rgb_y\n" + "".join(f"{a},{b},{c},{d}\n" for (a, b), (c, d) in zip(ir, rgb)))
    out = tmp_path / "cal.yaml"
    proc = subprocess.run([sys.executable, "-m", "calibration", "points", "--pairs", str(csv), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "on one line" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "RMS" not in proc.stdout and not out.exists()
