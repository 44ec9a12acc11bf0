"""Fault injection on the real program (``run_app.py``): kill -9 while recording, bad inputs, a stream that
ends early. The scenarios are the ones ``python -m bench.faults`` reports in docs/reliability.md."""

from __future__ import annotations

import pytest

from bench.faults import BAD_INPUTS, kill_while_recording, run_bad_input

FAULTS = {fault.name: fault for fault in BAD_INPUTS}


def check(name: str, tmp_path) -> dict:
    result = run_bad_input(FAULTS[name], tmp_path)
    assert result["as_expected"], result
    return result


@pytest.mark.slow
def test_kill_9_while_recording_loses_about_one_second(tmp_path):
    result = kill_while_recording(tmp_path, after_s=4.0, segment_seconds=3.0, size=(320, 240))
    assert result["returncode"] == -9 and result["segments"] >= 1
    assert all(n > 0 for n in result["frames_per_segment"])  # the closed segment and the open one decode
    # Keyframe every second + the progress line's 0.1 s lag: at most ~1.2 s of 25 FPS video is lost.
    assert result["frames_lost"] <= 30, result
    assert result["session_pairs_readable"] >= 1


@pytest.mark.parametrize("mode", [["--headless"], []])
def test_an_avi_recording_is_refused_before_anything_starts(tmp_path, capsys, mode):
    import run_app

    args = [*mode, "--fast", "--frames", "5", "--method", "average", "--record", str(tmp_path / "x.avi")]
    assert run_app.main(args) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: cannot record to ") and "unsupported extension '.avi'" in line
    assert not list(tmp_path.iterdir())  # (a second recording over a first one: tests/test_recorder.py)


def test_bad_frames_are_counted_by_kind_without_opencv_warnings(tmp_path):
    result = check("empty, truncated, garbage and wrong-size frames in folders", tmp_path)
    assert result["opencv_warnings"] == 0 and result["returncode"] == 0


@pytest.mark.slow
def test_a_vanishing_folder_is_one_message_and_ends_the_run(tmp_path):
    result = check("thermal folder deleted during the run", tmp_path)
    assert result["opencv_warnings"] == 0 and len(result["messages"]) == 1
    assert "frames left unread" in result["messages"][0]


def test_a_run_that_fuses_nothing_exits_2(tmp_path):
    result = check("no frame can be fused", tmp_path)
    assert result["message"].startswith("error: no frame was fused (thermal: 3 empty frames skipped")


@pytest.mark.parametrize("mode", ["headless", "viewer"])
def test_a_calibration_for_another_frame_size_is_one_message_and_exit_2(tmp_path, mode):
    result = check(f"calibration made for another frame size ({mode})", tmp_path)
    assert "640x512" in result["message"] and result["traceback"] is False and result["stderr_lines"] == 1


def test_the_run_ends_when_the_shorter_stream_ends(tmp_path):
    result = check("thermal stream shorter than the colour one", tmp_path)
    # 1 s of thermal beside 10 s of colour, paced in real time: the run ends with the thermal stream.
    assert result["run_wall_s"] is not None and result["run_wall_s"] < 4.0, result
    assert result["frames"].startswith("frames: 2")  # about 25 pairs


def test_a_gstreamer_pipeline_without_gstreamer_says_so():
    from app.errors import SourceError
    from app.sources import open_source
    from app.sources.camera import opencv_has_gstreamer

    if opencv_has_gstreamer():
        pytest.skip("this OpenCV has GStreamer, so the pipeline is tried for real")
    with pytest.raises(SourceError, match="GStreamer pipeline, but the installed OpenCV is built without GStreamer"):
        open_source("videotestsrc ! appsink").open()
