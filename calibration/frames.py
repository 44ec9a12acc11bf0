"""Frame pairs for the calibration tools: one image pair, two folders (paired by file name), or two videos.

A rig does not move, so many frames of it calibrate better than one: more structure, and what a single
frame shows by chance (a passing car in one camera only) averages out. Frames are sampled evenly.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import CalibrationError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm"}


def read_image(path: str | Path) -> np.ndarray:
    """An image file as loaded by OpenCV (dtype and channels kept); CalibrationError names a bad file."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise CalibrationError(f"cannot read image {path} (unsupported or corrupt)")
    return image


def _evenly(n_total: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(n_total)`` (all of them when there are fewer)."""
    if n_total <= count:
        return list(range(n_total))
    return sorted({round(i * (n_total - 1) / (count - 1)) for i in range(count)}) if count > 1 else [n_total // 2]


def folder_pairs(ir_dir: Path, rgb_dir: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``count`` (thermal, colour) images with the same file stem in the two folders, sampled evenly."""
    for folder in (ir_dir, rgb_dir):
        if not folder.is_dir():
            raise CalibrationError(f"folder not found: {folder}")
    ir_files = {p.stem: p for p in ir_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    rgb_files = {p.stem: p for p in rgb_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    names = sorted(set(ir_files) & set(rgb_files))
    if not names:
        raise CalibrationError(f"no images with the same name in {ir_dir} and {rgb_dir}")
    return [(read_image(ir_files[names[i]]), read_image(rgb_files[names[i]])) for i in _evenly(len(names), count)]


def _video_frames(path: Path, indices: list[int]) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    try:
        frames, wanted, index = [], set(indices), 0
        while index <= max(indices):
            ok, frame = cap.read()  # sequential read: exact frame indices, unlike seeking in a compressed stream
            if not ok:
                break
            if index in wanted:
                frames.append(frame)
            index += 1
        return frames
    finally:
        cap.release()


def video_pairs(ir_video: Path, rgb_video: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``count`` (thermal, colour) frames at the same indices of two synchronised videos, sampled evenly."""
    lengths = []
    for path in (ir_video, rgb_video):
        if not path.is_file():
            raise CalibrationError(f"video not found: {path}")
        cap = cv2.VideoCapture(str(path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        if n <= 0:
            raise CalibrationError(f"cannot read video {path} (unsupported, corrupt or empty)")
        lengths.append(n)
    indices = _evenly(min(lengths), count)
    ir, rgb = _video_frames(ir_video, indices), _video_frames(rgb_video, indices)
    n = min(len(ir), len(rgb))
    if n == 0:
        raise CalibrationError(f"no frames could be decoded from {ir_video} and {rgb_video}")
    return list(zip(ir[:n], rgb[:n]))


def load_pairs(ir: str | None, rgb: str | None, ir_video: str | None, rgb_video: str | None,
               count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Frame pairs from the command line's choice: two images, two folders or two videos."""
    if count < 1:
        raise CalibrationError(f"--frames must be at least 1, got {count}")
    if (ir_video is None) != (rgb_video is None):
        raise CalibrationError("give both --ir-video and --rgb-video")
    if ir_video is not None:
        if ir is not None or rgb is not None:
            raise CalibrationError("give either --ir/--rgb or --ir-video/--rgb-video, not both")
        return video_pairs(Path(ir_video), Path(rgb_video), count)
    if ir is None or rgb is None:
        raise CalibrationError("give --ir and --rgb (images or folders), or --ir-video and --rgb-video")
    ir_path, rgb_path = Path(ir), Path(rgb)
    if ir_path.is_dir() or rgb_path.is_dir():
        return folder_pairs(ir_path, rgb_path, count)
    return [(read_image(ir_path), read_image(rgb_path))]
