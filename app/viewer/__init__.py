"""The PyQt6 viewer: the only package of the project that imports Qt.

A thin layer over :class:`app.pipeline.FusionPipeline`: the pipeline runs in its own threads and
hands results to a bridge object that signals the GUI thread (queued connection), which shows only
the newest result. ``run_viewer`` is what ``run_app.py`` calls.
"""

from .main_window import SHORTCUTS, MainWindow, run_viewer

__all__ = ["MainWindow", "SHORTCUTS", "run_viewer"]
