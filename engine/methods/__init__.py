"""Fusion methods. Importing this package registers the built-in ones."""

from .base import FusionMethod

__all__ = ["FusionMethod"]
