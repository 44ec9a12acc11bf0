"""Infrared + visible image fusion engine: M2PN, classical baselines, metrics, evaluation.

Usable as a library (``from engine import FusionEngine``); knows arrays and tensors, never Qt or cameras.
"""

from .errors import FusionError, FusionInputError, UnknownMethodError, WeightsError
from .fusion_engine import FusionEngine
from .registry import available_methods, create_method, register_method

__all__ = [
    "FusionEngine",
    "FusionError",
    "FusionInputError",
    "UnknownMethodError",
    "WeightsError",
    "available_methods",
    "create_method",
    "register_method",
]
