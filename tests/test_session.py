"""Recorded sessions: record -> replay identical, a killed recorder still replays, replay controls."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from app.errors import RecordingError, SourceError
from app.pairer import FramePair
from app.session import SessionReader, SessionReplay, SessionWriter
from app.sources import open_source
from app.sources.base import Frame

REPO = Path(__file__).resolve().parents[1]


def _pairs(n: int, rng) -> list[FramePair]:
    out = []
    for i in range(n):
        ir = rng.integers(0, 65535, (24, 32), dtype=np.uint16)  # raw 16-bit thermal counts
        rgb = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        out.append(FramePair(ir=Frame(ir, 100.0 + i / 9 + 1e-7 * i, 3 * i),
                             rgb=Frame(rgb, 100.0 + i / 9 + 0.0031, 10 * i)))
    return out


def test_record_then_replay_gives_identical_pairs(tmp_path, rng):
    pairs = _pairs(6, rng)
    with SessionWriter(tmp_path / "s", "thermal camera 0", "colour camera 1", calibration={"version": 1}) as w:
        for p in pairs:
            w.write_pair(p)
    meta = yaml.safe_load((tmp_path / "s" / "session.yaml").read_text())
    assert meta["complete"] and meta["frames"] == 6 and meta["version"] == 1
    assert meta["sources"]["ir"] == "thermal camera 0" and meta["calibration"]["content"] == {"version": 1}
    reader = SessionReader(tmp_path / "s")
    assert len(reader) == 6
    replay = SessionReplay(tmp_path / "s", speed=0.0)
    replay.start()
    got = []
    while (p := replay.get_pair(timeout=1.0)) is not None:
        got.append(p)
    assert replay.ended and len(got) == 6
    for a, b in zip(pairs, got):
        assert b.ir.image.dtype == np.uint16 and np.array_equal(a.ir.image, b.ir.image)
        assert np.array_equal(a.rgb.image, b.rgb.image)
        assert (a.ir.timestamp, a.rgb.timestamp, a.ir.index, a.rgb.index) == \
               (b.ir.timestamp, b.rgb.timestamp, b.ir.index, b.rgb.index)


KILLED_WRITER = """
import sys, time, numpy as np
sys.path.insert(0, {repo!r})
from app.session import SessionWriter
from app.pairer import FramePair
from app.sources.base import Frame
w = SessionWriter({folder!r}, "thermal", "colour")
for i in range(10000):
    w.write_pair(FramePair(Frame(np.full((16, 16), i, np.uint16), i * 0.1, i), Frame(np.full((16, 16, 3), i % 256, np.uint8), i * 0.1, i)))
    if i == 4:
        print("ready", flush=True)
"""


def test_session_of_a_killed_recorder_still_replays(tmp_path):
    folder = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER.format(repo=str(REPO), folder=str(folder))],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.kill()
    proc.wait(timeout=10)
    reader = SessionReader(folder)
    assert not reader.complete and len(reader) >= 5
    pairs = list(reader)
    assert [int(p.ir.image[0, 0]) for p in pairs] == list(range(len(pairs)))
    assert [p.rgb.timestamp for p in pairs] == [i * 0.1 for i in range(len(pairs))]


def test_replay_pause_step_seek_and_speed(tmp_path, rng):
    with SessionWriter(tmp_path / "s", "a", "b") as w:
        for p in _pairs(10, rng):  # recorded at 9 pairs per second
            w.write_pair(p)
    replay = SessionReplay(tmp_path / "s", speed=1.0)
    replay.start()
    t0 = time.monotonic()
    first, second = replay.get_pair(1.0), replay.get_pair(1.0)
    assert first.ir.index == 0 and second.ir.index == 3
    assert 0.08 <= time.monotonic() - t0 < 0.5  # paced: 1/9 s between pairs
    replay.pause()
    assert replay.get_pair(timeout=0.15) is None  # paused: nothing
    replay.step()
    assert replay.get_pair(timeout=0.5).ir.index == 6 and replay.position == 3
    assert replay.get_pair(timeout=0.1) is None  # one step = one pair
    replay.seek(8)
    replay.step()
    assert replay.get_pair(timeout=0.5).ir.index == 24
    replay.seek(0)
    replay.set_speed(4.0)
    replay.resume()
    t0 = time.monotonic()
    got = [replay.get_pair(1.0) for _ in range(5)]
    assert [p.ir.index for p in got] == [0, 3, 6, 9, 12]
    assert 0.08 <= time.monotonic() - t0 < 0.4  # 4 x 1/36 s
    assert replay.length == 10 and replay.stats.paired == 9
    replay.stop()
    assert replay.get_pair(timeout=0.1) is None


def test_session_stream_through_open_source_and_errors(tmp_path, rng):
    pairs = _pairs(3, rng)
    with SessionWriter(tmp_path / "s", "a", "b") as w:
        for p in pairs:
            w.write_pair(p)
    src = open_source(str(tmp_path / "s" / "rgb"))
    src.open()
    frames = [src.read() for _ in range(4)]
    assert frames[3] is None and np.array_equal(frames[2].image, pairs[2].rgb.image)
    with pytest.raises(RecordingError, match="already holds a session"):
        SessionWriter(tmp_path / "s", "a", "b")
    with pytest.raises(SourceError, match="not a recorded session"):
        SessionReader(tmp_path)
    with pytest.raises(SourceError, match="session folder not found"):
        SessionReplay(tmp_path / "nothing")
