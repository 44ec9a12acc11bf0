"""Errors of the calibration package (no dependency on the application)."""


class CalibrationError(Exception):
    """A calibration file or calibration input is wrong; the message names the key, file or problem."""
