"""Frame sources: video files to a clean end, image folders (16-bit, corrupt files, timestamps), open_source."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.errors import SourceError
from app.sources import CameraSource, ImageFolderSource, VideoFileSource, open_source


def _write_video(path, frames: int = 12, fps: float = 10.0, size=(64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        img = np.full((size[1], size[0], 3), i * 20, np.uint8)
        writer.write(img)
    writer.release()


def test_video_file_reads_to_a_clean_end_with_increasing_timestamps(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, frames=12, fps=10.0)
    src = VideoFileSource(path)
    with src:
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
        assert src.read() is None  # stays ended
    assert len(frames) == 12
    stamps = [f.timestamp for f in frames]
    assert stamps[0] == 0.0 and np.allclose(np.diff(stamps), 0.1, atol=0.002)
    assert [f.index for f in frames] == list(range(12))
    assert abs(int(frames[5].image.mean()) - 100) <= 3  # the frames are the ones written, in order


def test_video_file_loop_continues_timestamps(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, frames=5, fps=10.0)
    src = VideoFileSource(path, loop=True)
    src.open()
    frames = [src.read() for _ in range(12)]
    src.close()
    assert all(f is not None for f in frames)
    assert np.all(np.diff([f.timestamp for f in frames]) > 0)


def test_image_folder_keeps_16bit_and_skips_corrupt_png(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 65535, (24, 32), dtype=np.uint16) for _ in range(4)]
    for i, img in enumerate(images):
        cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), img)
    (tmp_path / "f001.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")  # corrupt
    cv2.imwrite(str(tmp_path / "f002.png"), np.zeros((10, 10), np.uint16))  # wrong size
    src = ImageFolderSource(tmp_path, fps=5.0)
    with src:
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert len(frames) == 2 and src.corrupt == 2 and src.skipped == ["f001.png", "f002.png"]
    assert frames[0].image.dtype == np.uint16 and np.array_equal(frames[1].image, images[3])
    assert [f.timestamp for f in frames] == [0.0, 0.6]  # the file position keeps its time slot


def test_image_folder_timestamps_file_plain_and_csv(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((4, 4), i, np.uint8))
    plain = tmp_path / "t.txt"
    plain.write_text("10.0\n10.11\n10.25\n")
    src = ImageFolderSource(tmp_path, timestamps_file=plain)
    src.open()
    assert [src.read().timestamp for _ in range(3)] == [10.0, 10.11, 10.25]
    named = tmp_path / "t.csv"
    named.write_text("name,seconds\n2.png,3.5\n0.png,1.5\n1.png,2.5\n")
    src = ImageFolderSource(tmp_path, timestamps_file=named)
    src.open()
    assert [src.read().timestamp for _ in range(3)] == [1.5, 2.5, 3.5]
    bad = tmp_path / "bad.txt"
    bad.write_text("1.0\n")
    with pytest.raises(SourceError, match="1 times for 3 frames"):
        ImageFolderSource(tmp_path, timestamps_file=bad).open()


def test_missing_things_raise_source_error_naming_them(tmp_path):
    with pytest.raises(SourceError, match="nope.mp4"):
        open_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="video file not found"):
        VideoFileSource(tmp_path / "gone.mp4").open()
    with pytest.raises(SourceError, match="image folder not found"):
        ImageFolderSource(tmp_path / "missing").open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(tmp_path / "empty").open()
    with pytest.raises(SourceError, match="cannot open"):
        CameraSource("/dev/video99", name="thermal camera").open()


def test_open_source_picks_the_kind(tmp_path):
    video = tmp_path / "v.avi"
    _write_video(video, frames=2)
    folder = tmp_path / "frames"
    folder.mkdir()
    assert isinstance(open_source("0"), CameraSource) and open_source("0").device == 0
    assert isinstance(open_source("rtsp://cam.local/stream"), CameraSource)
    assert isinstance(open_source("v4l2src ! videoconvert ! appsink"), CameraSource)
    assert isinstance(open_source(str(video)), VideoFileSource)
    assert isinstance(open_source(str(folder), fps=9.0), ImageFolderSource)
