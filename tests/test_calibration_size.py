"""A calibration used with frames of another size: rescaled when each camera keeps its aspect ratio,
otherwise one CalibrationError naming both sizes (what the application turns into exit 2)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration import Calibration, CalibrationError, Registrar, apply_homography

H = np.array([[1.02, 0.03, 12.0], [-0.02, 0.99, -7.0], [0.0, 0.0, 1.0]])  # thermal 320x256 -> colour 640x480


def _half_size_h(h: np.ndarray) -> np.ndarray:
    """The same view at half resolution on both cameras (pixel-centre convention, like cv2.resize)."""
    s = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1.0]])
    return s @ h @ np.linalg.inv(s)


def test_same_aspect_ratio_is_rescaled_and_maps_points_like_the_original():
    cal = Calibration(homography=H, ir_size=(320, 256), rgb_size=(640, 480))
    small = cal.adapted_to((160, 128), (320, 240))
    assert small.ir_size == (160, 128) and small.rgb_size == (320, 240)
    assert small.extra["adapted_from"] == {"ir_size": [320, 256], "rgb_size": [640, 480]}
    # a thermal point at half resolution lands at half the colour position the original maps it to
    p_full = np.array([[100.5, 60.5], [300.5, 200.5]])
    p_half = (p_full + 0.5) * 0.5 - 0.5
    expected = (apply_homography(H, p_full) + 0.5) * 0.5 - 0.5
    assert np.allclose(apply_homography(small.homography, p_half), expected, atol=1e-9)
    assert cal.adapted_to((320, 256), (640, 480)) is cal


def test_another_aspect_ratio_names_both_sizes():
    cal = Calibration(homography=H, ir_size=(320, 256), rgb_size=(640, 480))
    with pytest.raises(CalibrationError, match=r"colour frames are 1280x720 but the calibration file's 'rgb_size' "
                                               r"is 640x480 \(another aspect ratio"):
        cal.adapted_to((320, 256), (1280, 720))


def test_registrar_prepare_returns_a_note_and_register_uses_the_rescaled_homography():
    cal = Calibration(homography=H, ir_size=(320, 256), rgb_size=(640, 480))
    reg = Registrar(cal)
    assert reg.prepare((256, 320), (480, 640, 3)) is None
    note = reg.prepare((128, 160), (240, 320, 3))
    assert "thermal 320x256" in note and "thermal 160x128" in note and "rescaled" in note
    ir = np.zeros((128, 160), np.uint8)
    cv2.circle(ir, (80, 64), 6, 255, -1)
    ir_on, _ = reg.register(ir, np.zeros((240, 320, 3), np.uint8))
    ys, xs = np.nonzero(ir_on > 127)
    centre = apply_homography(_half_size_h(H), np.array([[80.0, 64.0]]))[0]
    assert abs(xs.mean() - centre[0]) < 0.6 and abs(ys.mean() - centre[1]) < 0.6


def test_registrar_refuses_another_aspect_ratio_on_the_first_frame():
    reg = Registrar(Calibration(homography=H, ir_size=(320, 256), rgb_size=(640, 480)))
    with pytest.raises(CalibrationError, match="thermal frames are 320x240 .* 'ir_size' is 320x256"):
        reg.prepare((240, 320), (480, 640, 3))
    with pytest.raises(CalibrationError, match="thermal frames are 320x240"):
        reg.register(np.zeros((240, 320), np.uint8), np.zeros((480, 640, 3), np.uint8))
