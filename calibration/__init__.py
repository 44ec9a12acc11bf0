"""Registration of thermal and visible cameras: calibration files, the registrar that warps frames,
and the tools that make calibration files (point pairs, checkerboard, automatic alignment).

Knows geometry only: no Qt, no torch.

    cal = load_calibration("cal.yaml")
    ir_on_grid, rgb_on_grid = Registrar(cal).register(ir, rgb)
"""

from .auto import AutoAlignResult, auto_align
from .auto_verified import AutoVerdict, auto_calibrate
from .calibration_file import (CALIBRATION_VERSION, Calibration, apply_homography, corner_rms, load_calibration,
                               save_calibration)
from .errors import CalibrationError
from .points import HomographyFit, fit_homography, read_point_pairs
from .registrar import Registrar

__all__ = ["AutoAlignResult", "auto_align", "AutoVerdict", "auto_calibrate", "CALIBRATION_VERSION", "Calibration", "apply_homography", "corner_rms",
           "load_calibration", "save_calibration", "CalibrationError", "HomographyFit", "fit_homography",
           "read_point_pairs", "Registrar"]
