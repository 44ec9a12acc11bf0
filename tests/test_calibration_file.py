"""Calibration files (load/save/validation) and the Registrar (warps, sizes, speed path)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from calibration import Calibration, CalibrationError, Registrar, load_calibration, save_calibration
from calibration.calibration_file import apply_homography

H = np.array([[1.05, 0.02, 12.0], [-0.01, 0.98, -7.5], [1e-5, 2e-5, 1.0]])


def _write(tmp_path, data) -> str:
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _good() -> dict:
    return {"version": 1, "ir_size": [160, 120], "rgb_size": [320, 240], "homography": H.tolist(),
            "direction": "ir_to_rgb", "method": "points", "reprojection_error_px": 0.3, "created": "2026-01-01"}


def test_save_and_load_round_trip(tmp_path):
    cal = Calibration(homography=H, ir_size=(160, 120), rgb_size=(320, 240), method="points",
                      reprojection_error_px=0.25, extra={"inliers": 12})
    path = save_calibration(cal, tmp_path / "sub" / "cal.yaml")
    loaded = load_calibration(path)
    assert np.allclose(loaded.homography, H) and loaded.ir_size == (160, 120) and loaded.rgb_size == (320, 240)
    assert loaded.direction == "ir_to_rgb" and loaded.reprojection_error_px == 0.25
    assert loaded.extra == {"inliers": 12} and loaded.version == 1


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("homography"), "missing key 'homography'"),
    (lambda d: d.pop("rgb_size"), "missing key 'rgb_size'"),
    (lambda d: d.update(version=7), "unsupported 'version' 7"),
    (lambda d: d.update(homography=[[1, 0], [0, 1]]), "'homography' must be 3x3"),
    (lambda d: d.update(homography=[[1, 2, 3], [2, 4, 6], [0, 0, 1]]), "singular"),
    (lambda d: d.update(homography=[[1, 0, "x"], [0, 1, 0], [0, 0, 1]]), "'homography' must be a 3x3 list"),
    (lambda d: d.update(ir_size=[640]), "'ir_size' must be \\[width, height\\]"),
    (lambda d: d.update(direction="sideways"), "'direction' must be one of"),
    (lambda d: d.update(reprojection_error_px="small"), "'reprojection_error_px' must be a number"),
])
def test_bad_files_name_the_problem(tmp_path, change, message):
    data = _good()
    change(data)
    with pytest.raises(CalibrationError, match=message):
        load_calibration(_write(tmp_path, data))


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(CalibrationError, match="calibration file not found"):
        load_calibration(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [1\n")
    with pytest.raises(CalibrationError, match="not valid YAML"):
        load_calibration(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(CalibrationError, match="not a calibration mapping"):
        load_calibration(bad)


def test_registrar_warps_thermal_onto_the_colour_grid(rng):
    ir = np.zeros((120, 160), np.uint8)
    cv2.rectangle(ir, (40, 30), (100, 80), 255, -1)
    cal = Calibration(homography=H, ir_size=(160, 120), rgb_size=(320, 240))
    ir_on, rgb_on = Registrar(cal).register(ir, np.zeros((240, 320, 3), np.uint8))
    assert ir_on.shape == (240, 320) and rgb_on.shape == (240, 320, 3)
    expected = cv2.warpPerspective(ir, H, (320, 240))  # the reference implementation of the same warp
    assert np.mean(np.abs(ir_on.astype(int) - expected)) < 1.0
    cx, cy = apply_homography(H, [[70, 55]])[0]  # a point inside the rectangle lands inside it
    assert ir_on[int(round(cy)), int(round(cx))] == 255


def test_registrar_rgb_to_ir_direction_and_16bit():
    h = np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 1]])
    cal = Calibration(homography=h, ir_size=(160, 120), rgb_size=(320, 240), direction="rgb_to_ir")
    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb[100:140, 200:260] = (0, 0, 255)
    ir = np.full((120, 160), 40000, np.uint16)
    ir_out, rgb_on = Registrar(cal).register(ir, rgb)
    assert ir_out is ir and rgb_on.shape == (120, 160, 3)
    assert tuple(rgb_on[60, 115]) == (0, 0, 255) and tuple(rgb_on[10, 10]) == (0, 0, 0)


def test_registrar_rejects_frames_of_another_size():
    cal = Calibration(homography=np.eye(3), ir_size=(160, 120), rgb_size=(320, 240))
    with pytest.raises(CalibrationError, match="thermal frames are 640x512 but .*'ir_size' is 160x120"):
        Registrar(cal).register(np.zeros((512, 640), np.uint8), np.zeros((240, 320, 3), np.uint8))


def test_identity_registrar_resizes_and_unknown_sizes_are_taken_from_frames():
    reg = Registrar.identity((160, 120), (320, 240))
    ir = np.tile(np.arange(160, dtype=np.uint8), (120, 1))
    ir_on, _ = reg.register(ir, np.zeros((240, 320, 3), np.uint8))
    assert ir_on.shape == (240, 320) and abs(int(ir_on[100, 200]) - 100) <= 1
    free = Registrar.identity()
    out, _ = free.register(ir, np.zeros((120, 160, 3), np.uint8))
    assert np.array_equal(out, ir)
