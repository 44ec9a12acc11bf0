"""Fusion metrics against answers known by hand, and the ``python -m engine.metrics`` command."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from engine.errors import FusionInputError
from engine.metrics import (
    METRIC_NAMES,
    average_gradient,
    compute_all,
    correlation_coefficient,
    entropy,
    mutual_information,
    nabf,
    psnr,
    qabf,
    qabf_perfect_score,
    scd,
    spatial_frequency,
    ssim,
    standard_deviation,
    vif,
)
from engine.metrics.__main__ import main as metrics_main
from engine.metrics.structural import ssim_pair

EXPECTED_KEYS = ["EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "PSNR", "CC", "Nabf"]


@pytest.fixture
def textured(rng):
    """(48, 64) float64 smooth-plus-noise image with grey levels 0..255."""
    base = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64)), (0, 0), 2.0)
    return np.clip(np.rint(base * 3 - 250 + rng.normal(0, 8, base.shape)), 0, 255)


def test_entropy_of_constant_and_two_level_images():
    assert entropy(np.full((10, 10), 77.0)) == 0.0
    two = np.zeros((8, 8))
    two[:, :4] = 200.0
    assert entropy(two) == pytest.approx(1.0)


def test_sd_sf_ag_of_hand_computed_arrays():
    a = np.array([[0.0, 2.0], [4.0, 6.0]])
    assert standard_deviation(a) == pytest.approx(math.sqrt(5.0))  # mean 3, squared deviations 9,1,1,9
    # horizontal differences 2, 2 -> RF^2 = 4; vertical differences 4, 4 -> CF^2 = 16
    assert spatial_frequency(a) == pytest.approx(math.sqrt(20.0))
    # one-sided differences everywhere on a 2x2: gx = 2, gy = 4
    assert average_gradient(a) == pytest.approx(math.sqrt(10.0))
    # central difference in the middle column: gx = 1, (4-0)/2 = 2, 3 -> mean(gx / sqrt 2) = sqrt 2
    b = np.tile([0.0, 1.0, 4.0], (3, 1))
    assert average_gradient(b) == pytest.approx(math.sqrt(2.0))


def test_mi_is_symmetric_in_the_sources(textured, rng):
    other = np.clip(textured[::-1] + rng.normal(0, 20, textured.shape), 0, 255)
    fused = np.rint(0.5 * (textured + other))
    assert mutual_information(textured, other, fused) == pytest.approx(mutual_information(other, textured, fused))


def test_mi_of_identical_images_is_twice_the_entropy_in_nats(textured):
    assert mutual_information(textured, textured, textured) == pytest.approx(2 * entropy(textured) * math.log(2))


def test_identical_images_score_perfectly(textured):
    t = textured
    assert ssim(t, t, t) == pytest.approx(2.0)
    assert correlation_coefficient(t, t, t) == pytest.approx(1.0)
    assert vif(t, t, t) == pytest.approx(2.0, abs=1e-6)
    assert qabf(t, t, t) == pytest.approx(qabf_perfect_score(), abs=1e-12)
    assert 0.97 < qabf_perfect_score() < 0.98  # the sigmoids saturate just below their gains
    assert psnr(t, t, t) == math.inf  # zero error: documented as +inf (null in the JSON output)


def test_degraded_fusion_scores_below_perfect(textured, rng):
    blurred = cv2.GaussianBlur(textured, (0, 0), 2.0)
    assert ssim(textured, textured, blurred) < 1.9
    assert vif(textured, textured, blurred) < 1.5
    assert qabf(textured, textured, blurred) < qabf_perfect_score() - 0.1


def test_ssim_matches_a_direct_windowed_computation(rng):
    """Independent check: SSIM of every 7x7 window computed with np.cov, averaged."""
    x = rng.uniform(0, 255, (12, 13))
    y = np.clip(x + rng.normal(0, 30, x.shape), 0, 255)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(x.shape[0] - 6):
        for j in range(x.shape[1] - 6):
            wx, wy = x[i : i + 7, j : j + 7].ravel(), y[i : i + 7, j : j + 7].ravel()
            cov = np.cov(wx, wy)  # sample covariance, ddof = 1
            mx, my = wx.mean(), wy.mean()
            values.append((2 * mx * my + c1) * (2 * cov[0, 1] + c2)
                          / ((mx**2 + my**2 + c1) * (cov[0, 0] + cov[1, 1] + c2)))
    assert ssim_pair(x, y) == pytest.approx(np.mean(values), rel=1e-10)


def test_psnr_of_a_known_error():
    ir, vi, fused = np.full((8, 8), 90.0), np.full((8, 8), 110.0), np.full((8, 8), 100.0)
    assert psnr(ir, vi, fused) == pytest.approx(20.0)  # MSE 100, peak 100 -> 10 log10(10^4 / 100)


def test_scd_of_a_sum_of_independent_sources(rng):
    ir, vi = rng.uniform(0, 100, (32, 32)), rng.uniform(0, 100, (32, 32))
    # F - IR is exactly VI and F - VI exactly IR: both correlations are 1
    assert scd(ir, vi, ir + vi) == pytest.approx(2.0)
    # F = IR: F - IR = 0 carries nothing from VI (counted as 0), F - VI = IR - VI correlates positively with IR
    assert 0.0 < scd(ir, vi, ir) < 1.0


def test_nabf_is_zero_when_fused_equals_a_source_and_positive_with_artifacts(textured, rng):
    other = np.clip(textured[:, ::-1] * 0.5 + 60, 0, 255)
    assert nabf(textured, other, textured) == 0.0
    assert nabf(textured, other, other) == 0.0
    noisy = np.clip(0.5 * (textured + other) + rng.normal(0, 25, textured.shape), 0, 255)
    assert nabf(textured, other, noisy) > 0.01


def test_compute_all_key_order_and_size_check(textured):
    scores = compute_all(textured, textured, textured)
    assert list(scores) == EXPECTED_KEYS == list(METRIC_NAMES)
    assert scores["EN"] == pytest.approx(entropy(textured))
    with pytest.raises(FusionInputError, match="same size"):
        compute_all(textured, textured, textured[:-1])


@pytest.fixture
def image_files(tmp_path, textured):
    paths = {}
    for name, img in {"ir": textured, "vi": textured[::-1], "fused": textured, "small": textured[:20]}.items():
        paths[name] = tmp_path / f"{name}.png"
        cv2.imwrite(str(paths[name]), img.astype(np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    paths["broken"] = tmp_path / "broken.png"
    return paths


def test_cli_prints_one_json_object_with_the_keys_in_order(image_files, capsys):
    assert metrics_main([str(image_files[k]) for k in ("ir", "vi", "fused")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == EXPECTED_KEYS
    assert data["Nabf"] == 0.0  # fused equals the thermal source


def test_cli_writes_infinite_psnr_as_null(image_files, capsys):
    assert metrics_main([str(image_files["ir"])] * 3) == 0
    assert json.loads(capsys.readouterr().out)["PSNR"] is None


@pytest.mark.parametrize("bad, message", [("small", "same size"), ("broken", "cannot read"), ("missing", "no such")])
def test_cli_reports_bad_inputs_without_traceback(image_files, capsys, bad, message, tmp_path):
    fused = image_files.get(bad, tmp_path / "missing.png")
    assert metrics_main([str(image_files["ir"]), str(image_files["vi"]), str(fused)]) != 0
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err and captured.out == ""


def test_module_entry_point_runs(image_files):
    proc = subprocess.run([sys.executable, "-m", "engine.metrics", str(image_files["ir"]), str(image_files["vi"]),
                           str(image_files["small"])], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr
