"""Frame sources: cameras, video files, image folders, recorded sessions and the built-in demo.

``open_source(spec)`` turns a command-line/config string into the matching source.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import SourceError
from .base import Frame, FrameSource
from .camera import CameraSource
from .folder import ImageFolderSource
from .video import VideoFileSource

__all__ = ["Frame", "FrameSource", "CameraSource", "VideoFileSource", "ImageFolderSource", "open_source"]

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def open_source(spec: str, **kw) -> FrameSource:
    """The source ``spec`` names (not opened yet).

    * ``"0"``, ``"/dev/video0"`` -> :class:`CameraSource`; URLs (rtsp://, http://) and GStreamer pipelines
      (a string containing "!") -> :class:`CameraSource` too.
    * a video file -> :class:`VideoFileSource`; a folder of images -> :class:`ImageFolderSource`.
    * a recorded session folder (``session.yaml`` inside), or one of its ``ir``/``rgb`` folders -> that
      stream of the session (``stream="ir"`` or ``"rgb"`` keyword for the session folder itself; default ir).

    Extra keywords go to the source's constructor (e.g. ``loop=True``, ``fps=9``, ``name="thermal"``).
    Raises SourceError naming the spec when it names nothing usable.
    """
    spec = str(spec).strip()
    if not spec:
        raise SourceError("empty source: give a camera index, a device, a URL, a video file or a folder")
    if spec.isdigit() or spec.startswith("/dev/video") or _URL.match(spec) or "!" in spec:
        return CameraSource(spec, **kw)
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / "session.yaml").is_file():
            from ..session import SessionStreamSource

            return SessionStreamSource(path, stream=kw.pop("stream", "ir"), **kw)
        if path.name in ("ir", "rgb") and (path.parent / "session.yaml").is_file():
            from ..session import SessionStreamSource

            return SessionStreamSource(path.parent, stream=path.name, **kw)
        return ImageFolderSource(path, **kw)
    if path.is_file():
        return VideoFileSource(path, **kw)
    raise SourceError(f"source not found: {spec} (no such file, folder or camera)")
