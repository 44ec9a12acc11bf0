"""FramePairer / SequentialPairer: pairing by timestamp under jitter and different frame rates."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.pairer import FramePair, FramePairer, SequentialPairer
from app.sources.base import Frame


def _stream(fps: float, seconds: float, jitter_s: float, rng, offset: float = 0.0) -> list[Frame]:
    n = int(seconds * fps)
    times = offset + np.arange(n) / fps + rng.uniform(-jitter_s, jitter_s, n)
    img = np.zeros((2, 2), np.uint8)
    return [Frame(image=img, timestamp=float(t), index=i) for i, t in enumerate(times)]


def _merged(ir: list[Frame], rgb: list[Frame]):
    """Both streams in arrival order (by timestamp), as two capture threads would push them."""
    events = [("ir", f) for f in ir] + [("rgb", f) for f in rgb]
    return sorted(events, key=lambda e: e[1].timestamp)


def test_live_pairer_30fps_rgb_9fps_ir_with_jitter(rng):
    ir = _stream(9.0, 10.0, 0.003, rng)
    rgb = _stream(30.0, 10.0, 0.003, rng, offset=0.004)
    pairer = FramePairer(tolerance_s=0.020, max_buffer=8)
    pairs: list[FramePair] = []
    max_buffered = 0
    for stream, frame in _merged(ir, rgb):
        pairer.push(stream, frame)
        max_buffered = max(max_buffered, pairer.buffered())
        pair = pairer.get_pair(timeout=0)  # a fast consumer takes every pair
        if pair is not None:
            pairs.append(pair)
    assert all(abs(p.skew) <= 0.020 for p in pairs)
    # every thermal frame has a colour frame within 20 ms here (30 fps = 33 ms spacing, +-3 ms jitter)
    assert len(pairs) >= 0.95 * len(ir)
    ir_ids = [p.ir.index for p in pairs]
    rgb_ids = [p.rgb.index for p in pairs]
    assert len(set(ir_ids)) == len(ir_ids) and len(set(rgb_ids)) == len(rgb_ids)  # none twice
    assert ir_ids == sorted(ir_ids) and rgb_ids == sorted(rgb_ids)
    assert max_buffered <= 2 * 8  # bounded memory
    stats = pairer.stats
    assert stats.paired == len(pairs)
    assert stats.unmatched >= len(rgb) - len(pairs) - 16  # the extra colour frames were discarded


def test_slow_consumer_gets_newest_pair_and_stale_pairs_are_dropped(rng):
    ir = _stream(10.0, 2.0, 0.002, rng)
    rgb = _stream(10.0, 2.0, 0.002, rng)
    pairer = FramePairer(tolerance_s=0.010)
    for stream, frame in _merged(ir, rgb):
        pairer.push(stream, frame)
    pair = pairer.get_pair(timeout=0)
    assert pair is not None and pair.ir.index == len(ir) - 1 and pair.rgb.index == len(rgb) - 1
    assert pairer.get_pair(timeout=0.01) is None  # not handed out twice
    stats = pairer.stats
    assert stats.paired == 1 and stats.dropped == len(ir) - 1


def test_frames_without_partner_never_pair_and_buffers_stay_bounded():
    pairer = FramePairer(tolerance_s=0.005, max_buffer=4)
    img = np.zeros((1, 1), np.uint8)
    for i in range(100):  # colour only: nothing can pair, memory must not grow
        pairer.push("rgb", Frame(img, i * 0.01, i))
    assert pairer.buffered() == 4
    assert pairer.get_pair(timeout=0) is None
    pairer.push("ir", Frame(img, 0.5, 0))  # 0.5 s is long gone from the colour buffer
    assert pairer.get_pair(timeout=0) is None
    pairer.push("ir", Frame(img, 0.982, 1))  # closest buffered colour frame: 0.98 s
    pair = pairer.get_pair(timeout=0)
    assert pair is not None and pair.rgb.index == 98
    # overflow (96) + the two older colour frames (0.96, 0.97) + the stale thermal frame; 0.99 s stays buffered
    assert pairer.stats.unmatched == 96 + 2 + 1
    assert pairer.buffered() == 1


def test_get_pair_wakes_up_when_a_pair_is_pushed_from_another_thread():
    pairer = FramePairer()
    img = np.zeros((1, 1), np.uint8)
    pairer.push("ir", Frame(img, 1.0, 0))
    threading.Timer(0.05, lambda: pairer.push("rgb", Frame(img, 1.001, 0))).start()
    pair = pairer.get_pair(timeout=2.0)
    assert pair is not None and pair.skew == pytest.approx(-0.001)


def test_sequential_pairer_is_lossless_and_picks_the_closest_partner(rng):
    ir = _stream(9.0, 5.0, 0.003, rng)
    rgb = _stream(30.0, 5.0, 0.003, rng)
    its = {"ir": iter(ir), "rgb": iter(rgb)}
    seq = SequentialPairer(lambda t: next(its["ir"], None), lambda t: next(its["rgb"], None), 0.020)
    pairs = []
    while (p := seq.next_pair()) is not None:
        pairs.append(p)
    assert seq.finished
    assert len(pairs) == len(ir)  # every thermal frame found its partner
    for p in pairs:
        best = min(rgb, key=lambda f: abs(f.timestamp - p.ir.timestamp))
        assert p.rgb.index == best.index
    assert seq.stats.paired == len(ir) and 0 < seq.stats.unmatched <= len(rgb) - len(ir)


def test_pairer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="tolerance"):
        FramePairer(tolerance_s=0)
    with pytest.raises(ValueError, match="stream"):
        FramePairer().push("thermal", Frame(np.zeros((1, 1)), 0.0, 0))
