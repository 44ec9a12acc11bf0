"""The viewer tells the truth when things go wrong: a method that cannot be built, or a calibration made
for another frame size, closes it with the reason (no endless "waiting for the first fused frame"); the
Method box shows the method asked for; the thermal preview is drawn in the palette the Palette box shows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")

from app.assembly import CheckedRegistrar  # noqa: E402
from app.config import AppConfig, apply_overrides  # noqa: E402
from app.errors import AppError  # noqa: E402
from app.pipeline import FusionPipeline, PipelineOptions  # noqa: E402
from app.viewer import MainWindow  # noqa: E402
from test_pipeline import demo_pairs, pipeline_threads  # noqa: E402
from test_viewer import pump, qapp  # noqa: E402,F401 - qapp is a fixture


def window_for(tmp_path, options: PipelineOptions, registrar=None) -> MainWindow:
    cfg = apply_overrides(AppConfig(), {"viewer.snapshot_dir": str(tmp_path / "snaps")})
    pipeline = FusionPipeline(demo_pairs(frames=None, size=(160, 120)), options, registrar=registrar)
    return MainWindow(cfg, pipeline)


def test_a_method_that_cannot_be_built_closes_the_window_with_the_reason(qapp, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not weights")
    window = window_for(tmp_path, PipelineOptions(method="m2pn", fallbacks=(), weights=str(garbage)))
    assert window.method_box.currentText() == "m2pn"  # what was asked for, before and after the failure
    window.show()
    window.start()
    pump(qapp, lambda: not window.isVisible())
    assert isinstance(window.pipeline.error, AppError) and "garbage.pt" in str(window.pipeline.error)
    assert window.method_box.currentText() == "m2pn" and window.frames_shown == 0
    assert not pipeline_threads()


def test_a_calibration_for_another_frame_size_closes_the_window_with_one_message(qapp, tmp_path):
    from calibration import Calibration, Registrar

    wrong = Calibration(homography=np.eye(3), ir_size=(640, 512), rgb_size=(160, 120))  # frames are 160x120
    window = window_for(tmp_path, PipelineOptions(method="average"),
                        registrar=CheckedRegistrar(Registrar(wrong), "cal.yaml"))
    window.show()
    window.start()
    pump(qapp, lambda: not window.isVisible())
    message = str(window.pipeline.error)
    assert message.startswith("calibration file cal.yaml: ") and "640x512" in message and "\n" not in message


def test_thermal_preview_uses_the_palette_in_the_box(qapp, tmp_path):
    window = window_for(tmp_path, PipelineOptions(method="average", palette="ironbow"))
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    window.palette_box.setCurrentText("ironbow")
    coloured = window.thermal_preview(ramp)
    assert coloured.shape == (4, 256, 3) and np.abs(coloured[..., 0].astype(int) - coloured[..., 2]).max() > 50
    window.palette_box.setCurrentText("black_hot")
    inverted = window.thermal_preview(ramp)
    assert (inverted[..., 0] == 255 - ramp).all() and (inverted[..., 0] == inverted[..., 2]).all()
    window.close()
