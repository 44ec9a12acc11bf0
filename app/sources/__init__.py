"""Frame sources: cameras, video files, image folders, recorded sessions and the built-in demo."""

from .base import Frame, FrameSource

__all__ = ["Frame", "FrameSource"]
