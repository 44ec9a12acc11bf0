"""run_app.py: user errors exit 2 with one message (no traceback); headless runs record and summarise;
Ctrl-C finishes the segment; --screenshot works offscreen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

import run_app

REPO = Path(__file__).resolve().parents[1]


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def run_cli(*args, timeout=120):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "run_app.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ir", "0"], "--ir and --rgb go together"),
        (["--frames", "0"], "--frames must be a positive number"),
        (["--bogus-flag"], "unrecognized arguments: --bogus-flag"),
        (["--frames", "ten"], "invalid int value"),
        (["--screenshot", "x.jpg"], "must name a .png file"),
        (["--headless", "--screenshot", "x.png"], "needs the viewer"),
    ],
)
def test_bad_flags_exit_2_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        run_app.main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "nowhere.yaml"], "config file not found: nowhere.yaml"),
        (["--detector", "missing.onnx"], "detector.model: file not found: missing.onnx"),
        (["--calibration", "missing_cal.yaml"], "calibration: file not found"),
        (["--replay", "no_such_session"], "replay session folder not found: no_such_session"),
        (["--method", "bogus", "--headless"], "unknown fusion method 'bogus'; available:"),
    ],
)
def test_missing_files_and_bad_names_exit_2_without_traceback(args, message, capsys):
    assert run_app.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_bad_config_value_exit_2(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("gain:\n  high: 300\n")
    assert run_app.main(["--config", str(cfg), "--headless"]) == 2
    assert "gain.high: 300.0 is out of range [0.0, 100.0]" in capsys.readouterr().err


def test_list_methods(capsys):
    assert run_app.main(["--list-methods"]) == 0
    out = capsys.readouterr().out
    assert "gff" in out and "average" in out


def test_missing_video_files_exit_2_in_a_subprocess(tmp_path):
    proc = run_cli("--headless", "--ir", str(tmp_path / "a.mp4"), "--rgb", str(tmp_path / "b.mp4"), "--frames", "2")
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_headless_demo_records_a_readable_video(tmp_path):
    out = tmp_path / "night.mp4"
    proc = run_cli("--headless", "--fast", "--frames", "15", "--method", "average", "--record", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "frames: 15" in proc.stdout and "mean FPS" in proc.stdout
    (segment,) = sorted(tmp_path.glob("night_*.mp4"))
    assert int(cv2.VideoCapture(str(segment)).get(cv2.CAP_PROP_FRAME_COUNT)) == 15


def test_default_method_is_realtime_m2pn_on_the_cpu():
    proc = run_cli("--headless", "--fast", "--frames", "2")
    assert proc.returncode == 0, proc.stderr
    assert "fusion method: m2pn_rt on cpu (" in proc.stdout


@pytest.mark.parametrize("method", [[], ["--method", "m2pn"]])
def test_unusable_weights_the_user_asked_for_stop_the_run(tmp_path, method):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a weights file")
    proc = run_cli("--headless", "--fast", "--frames", "2", "--weights", str(bad), *method)
    assert proc.returncode == 2, proc.stdout
    (line,) = proc.stderr.splitlines()  # one line, no traceback, no torch paragraph
    assert line.startswith("error: fusion method m2pn") and "cannot be built" in line and "broken.pt" in line
    assert "using 'gff'" not in proc.stdout


def test_an_unknown_method_in_a_config_file_is_an_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("fusion:\n  method: bogus\n")
    assert run_app.main(["--config", str(cfg), "--headless", "--frames", "1"]) == 2


def test_only_the_default_method_falls_back_and_says_so_in_one_line(tmp_path):
    from app.assembly import method_and_fallbacks, pipeline_from_config
    from app.capture import LockstepCapture
    from app.config import load_config, apply_overrides
    from app.demo import open_demo_pair

    cfg = load_config(None)
    assert method_and_fallbacks(cfg) == ("m2pn_rt", ("gff", "average"))
    assert method_and_fallbacks(apply_overrides(cfg, {"fusion.method": "m2pn"})) == ("m2pn", ())
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a weights file")
    assert method_and_fallbacks(apply_overrides(cfg, {"fusion.weights": str(bad)}))[1] == ()
    # The default method failing (here: its weights unreadable) falls back, with one status line.
    messages = []
    pipeline = pipeline_from_config(cfg, LockstepCapture(*open_demo_pair(64, 48, frames=2, realtime=False)),
                                    on_status=messages.append)
    pipeline.options.weights = str(bad)
    pipeline.prepare()
    assert pipeline.method == "gff"
    (line,) = [m for m in messages if "unavailable" in m]
    assert line.startswith("fusion method 'm2pn_rt' unavailable (m2pn_rt: ") and line.endswith("using 'gff'")
    assert "\n" not in line and len(line) < 400
    pipeline.stop()


@pytest.mark.skipif(torch_cuda_available(), reason="a CUDA device is present, so the cuda backend does not fall back")
def test_unavailable_backend_falls_back_to_the_cpu_and_says_why():
    proc = run_cli("--headless", "--fast", "--frames", "2", "--backend", "cuda")
    assert proc.returncode == 0, proc.stderr
    assert "fusion method: m2pn_rt on cpu (" in proc.stdout and "requested cuda: cuda skipped" in proc.stdout


def test_ctrl_c_finishes_the_segment_and_prints_the_summary(tmp_path):
    out = tmp_path / "long.mp4"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(REPO / "run_app.py"), "--headless", "--method", "average",
                             "--record", str(out)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(tmp_path.glob("long_000.mp4")):
            time.sleep(0.1)
        time.sleep(1.0)  # let it record a few frames
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "interrupted (Ctrl-C)" in output and "frames:" in output and "recorded" in output
    (segment,) = sorted(tmp_path.glob("long_*.mp4"))
    assert int(cv2.VideoCapture(str(segment)).get(cv2.CAP_PROP_FRAME_COUNT)) > 0


def test_screenshot_offscreen_while_recording(tmp_path):
    shot = tmp_path / "viewer.png"
    proc = run_cli("--screenshot", str(shot), "--frames", "6", "--method", "average",
                   "--record", str(tmp_path / "v.mp4"))
    assert proc.returncode == 0, proc.stderr
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 300
    # --record in viewer mode starts recording at once; closing the window finalises the segment.
    (segment,) = sorted(tmp_path.glob("v_*.mp4"))
    assert int(cv2.VideoCapture(str(segment)).get(cv2.CAP_PROP_FRAME_COUNT)) >= 1


def test_record_a_session_then_replay_it(tmp_path):
    session = tmp_path / "session"
    proc = run_cli("--headless", "--fast", "--frames", "8", "--method", "average", "--record-session", str(session))
    assert proc.returncode == 0, proc.stderr
    assert (session / "session.yaml").is_file()
    proc = run_cli("--headless", "--fast", "--replay", str(session), "--method", "average",
                   "--record", str(tmp_path / "replayed.mp4"))
    assert proc.returncode == 0, proc.stderr
    assert "frames: 8" in proc.stdout and "end of stream" in proc.stdout
    (segment,) = sorted(tmp_path.glob("replayed_*.mp4"))
    assert int(cv2.VideoCapture(str(segment)).get(cv2.CAP_PROP_FRAME_COUNT)) == 8
