"""`ImageFolderSource`: a folder of frames (sorted by name), 8- or 16-bit, with optional real timestamps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import SourceError
from .base import Frame, FrameSource

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm"}


def list_frame_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_timestamps_file(path: Path, names: list[str]) -> list[float]:
    """Timestamps for ``names`` (file names in order) from one float per line, or "name,seconds" lines.

    Raises SourceError naming the file and line when it cannot be used.
    """
    if not path.is_file():
        raise SourceError(f"timestamps file not found: {path}")
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    by_name: dict[str, float] = {}
    plain: list[float] = []
    for number, line in enumerate(lines, 1):
        parts = [p.strip() for p in line.split(",")]
        try:
            if len(parts) == 1:
                plain.append(float(parts[0]))
            else:
                by_name[parts[0]] = float(parts[1])
        except ValueError:
            if number == 1:  # a header line such as "name,seconds"
                continue
            raise SourceError(f"timestamps file {path}, line {number}: not a number: {line!r}") from None
    if by_name:
        missing = [n for n in names if n not in by_name and Path(n).stem not in by_name]
        if missing:
            raise SourceError(f"timestamps file {path} has no time for {missing[0]} ({len(missing)} missing)")
        return [by_name.get(n, by_name.get(Path(n).stem)) for n in names]
    if len(plain) < len(names):
        raise SourceError(f"timestamps file {path} has {len(plain)} times for {len(names)} frames")
    return plain[: len(names)]


class ImageFolderSource(FrameSource):
    """Frames from a folder of images, sorted by name.

    Args:
        path: the folder.
        fps: frame rate for timestamps (``index / fps``) when there is no timestamps file.
        timestamps_file: one float (seconds) per line, or "name,seconds" CSV lines.

    Images are read unchanged (``IMREAD_UNCHANGED``): 16-bit PNG/TIFF thermal stays (H, W) uint16.
    A file that has vanished, is empty, cannot be decoded, or whose size/channels differ from the first frame
    is skipped and counted by kind (:meth:`FrameSource.problems`; also ``corrupt`` in total, names in
    ``skipped``). If the folder itself disappears, ``read()`` raises SourceError and the stream ends.
    """

    is_live = False

    def __init__(self, path: str | Path, fps: float = 25.0, timestamps_file: str | Path | None = None) -> None:
        if fps <= 0:
            raise SourceError(f"image folder frame rate must be positive, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.timestamps_file = Path(timestamps_file) if timestamps_file else None
        self.corrupt = 0
        self.skipped: list[str] = []
        self._files: list[Path] = []
        self._times: list[float] = []
        self._pos = 0
        self._index = 0
        self._shape: tuple | None = None
        self._dtype = None

    @property
    def description(self) -> str:
        return f"image folder {self.path}"

    def __len__(self) -> int:
        return len(self._files)

    def open(self) -> None:
        if not self.path.is_dir():
            raise SourceError(f"image folder not found: {self.path}")
        self._files = list_frame_files(self.path)
        if not self._files:
            raise SourceError(f"image folder {self.path} contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        names = [p.name for p in self._files]
        if self.timestamps_file is not None:
            self._times = read_timestamps_file(self.timestamps_file, names)
        else:
            self._times = [i / self.fps for i in range(len(names))]
        self._pos = 0
        self._index = 0

    def read(self) -> Frame | None:
        if not self._files:
            self.open()
        while self._pos < len(self._files):
            path, stamp = self._files[self._pos], self._times[self._pos]
            self._pos += 1
            problem, image = self._load(path)
            if problem is None and not self._consistent(image):
                problem = "wrong size"
            if problem is not None:
                self.corrupt += 1
                self.skipped.append(path.name)
                self.note_problem(problem, path.name)
                continue
            frame = Frame(image=image, timestamp=float(stamp), index=self._index, meta={"file": path.name})
            self._index += 1
            return frame
        return None

    def _load(self, path: Path) -> tuple[str | None, np.ndarray | None]:
        """(problem, image): the file's bytes are read here and decoded from memory, so a missing file is a
        counted problem rather than an OpenCV warning on stderr; a vanished folder ends the stream."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if not self.path.is_dir():
                raise SourceError(f"image folder {self.path} vanished "
                                  f"({len(self._files) - self._pos + 1} frames left unread)") from None
            return "missing", None
        except OSError:
            return "unreadable", None
        if not data:
            return "empty", None
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None or image.size == 0:
            return "corrupt", None
        return None, image

    def _consistent(self, image: np.ndarray) -> bool:
        """The first good frame fixes the shape and dtype; later frames must match it."""
        if self._shape is None:
            self._shape, self._dtype = image.shape, image.dtype
            return True
        return image.shape == self._shape and image.dtype == self._dtype

    def close(self) -> None:
        # Nothing is held open between reads; keep the position so close() + read() does not restart.
        pass
