"""Fault injection: what the application does when things go wrong, measured on the real program.

    python -m bench.faults --markdown docs/reliability.md --json docs/images/reliability_faults.json

Three groups, each run for real (``run_app.py`` in a subprocess, or the headless pipeline in process):

* **kill -9 while recording** (:func:`kill_while_recording`): the headless demo records the fused video
  (and the raw session); the process is killed with SIGKILL after a few seconds; the frames a player can
  still decode are counted against the frames fused when the signal was sent.
* **a writer slower than the camera** (:func:`slow_writer_run`): the camera-paced demo with a recorder that
  takes longer per frame than the camera period; the pipeline's FPS is compared with the same run without
  recording, and the recorder's drops are counted.
* **bad inputs** (:data:`BAD_INPUTS`): each one's exit status and the message the user sees.

``tests/test_faults.py`` runs the same scenarios (shorter) with assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from app.recorder import SegmentedRecorder

REPO = Path(__file__).resolve().parents[1]
PROGRESS = re.compile(r"(\d+)(?:/\d+)?\s*(?:\[|frame)")  # tqdm: "fusing: 123frame [..." or "123/250 [..."


# ----- running the program ------------------------------------------------------------------------------
def app_env(**changes: str | None) -> dict:
    """The environment ``run_app.py`` runs in: offscreen Qt, one OpenMP thread, plus ``changes``
    (a None value removes the variable)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass
class Outcome:
    """One run of ``run_app.py``: exit status, output and duration."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def error_line(self) -> str:
        """The ``error: ...`` line the user sees (empty when there is none)."""
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith("error:")]
        return lines[-1] if lines else ""

    @property
    def stderr_lines(self) -> int:
        return len([ln for ln in self.stderr.splitlines() if ln.strip()])

    def summary_line(self, prefix: str) -> str:
        lines = [ln for ln in self.stdout.splitlines() if ln.startswith(prefix)]
        return lines[-1] if lines else ""

    def status_lines(self, needle: str) -> list[str]:
        return [ln.split("[status] ", 1)[1] for ln in self.stdout.replace("\r", "\n").splitlines()
                if "[status] " in ln and needle in ln]


def run_app(args: list[str], env: dict | None = None, timeout: float = 180.0) -> Outcome:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "run_app.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env or app_env())
    return Outcome(list(args), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def demo_config(work: Path, width: int = 640, height: int = 480, segment_seconds: float = 60.0) -> Path:
    return write_config(work / f"demo_{width}x{height}_{segment_seconds:g}.yaml",
                        f"sources:\n  demo:\n    width: {width}\n    height: {height}\n"
                        f"recording:\n  segment_seconds: {segment_seconds:g}\n")


class LiveRun:
    """``run_app.py`` started in the background, its progress count followed from its output."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, str(REPO / "run_app.py"), *args], cwd=REPO, env=app_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.fused = 0
        self.first_frame_at: float | None = None
        self.stdout = ""
        self._reader = threading.Thread(target=self._follow, daemon=True)
        self._reader.start()

    def _follow(self) -> None:
        line = ""
        while True:
            char = self.proc.stdout.read(1)
            if not char:
                return
            self.stdout += char
            line += char
            if char in "\r\n":
                match = PROGRESS.search(line)
                if match and "fusing" in line:
                    self.fused = int(match.group(1))
                    if self.fused > 0 and self.first_frame_at is None:
                        self.first_frame_at = time.monotonic()
                line = ""

    def wait_first_frame(self, timeout: float = 120.0) -> float:
        """Wait until the first fused frame shows in the progress line; returns when it did."""
        deadline = time.monotonic() + timeout
        while self.first_frame_at is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise RuntimeError(f"run_app.py {' '.join(self.args)} did not start fusing")
            time.sleep(0.02)
        return self.first_frame_at

    def finish(self, timeout: float = 120.0) -> Outcome:
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        self.proc.wait(timeout)
        self._reader.join(5)
        return Outcome(self.args, self.proc.returncode, self.stdout, stderr, time.monotonic() - self.started)


# ----- kill -9 while recording ------------------------------------------------------------------------
def kill_while_recording(work: Path, after_s: float, segment_seconds: float = 60.0, method: str = "gff",
                         session: bool = True, size: tuple[int, int] = (640, 480)) -> dict:
    """Record the camera-paced demo, SIGKILL the process ``after_s`` seconds after its first fused frame,
    then count what can be recovered.

    Returns fused frames at the kill (from the progress line, which lags by up to 0.1 s), frames decodable
    from the video segments, session pairs readable, and the loss in frames and seconds of video.
    """
    from app.recorder import readable_frames
    from app.session import SessionReader

    out = work / f"kill_{after_s:g}s_{segment_seconds:g}"
    cfg = demo_config(work, *size, segment_seconds=segment_seconds)
    args = ["--headless", "--config", str(cfg), "--method", method, "--record", str(out / "video.mp4")]
    if session:
        args += ["--record-session", str(out / "session")]
    run = LiveRun(args)
    time.sleep(max(0.0, run.wait_first_frame() + after_s - time.monotonic()))
    fused_at_kill = run.fused
    run.proc.send_signal(signal.SIGKILL)
    returncode = run.finish().returncode
    segments = sorted(out.glob("video_*.mp4"))
    decodable = [readable_frames(p) for p in segments]
    pairs = len(SessionReader(out / "session")) if session and (out / "session" / "session.yaml").is_file() else None
    recovered = sum(decodable)
    return {
        "kill_after_s": after_s, "segment_seconds": segment_seconds, "method": method,
        "size": f"{size[0]}x{size[1]}", "fused_at_kill": fused_at_kill, "segments": len(segments),
        "frames_per_segment": decodable, "frames_recovered": recovered,
        # In seconds at the rate the run actually fused (a loaded machine fuses fewer than 25 per second).
        "frames_lost": fused_at_kill - recovered,
        "seconds_lost": round((fused_at_kill - recovered) * after_s / max(fused_at_kill, 1), 2),
        "session_pairs_readable": pairs, "returncode": returncode,
    }


# ----- a writer slower than the camera ----------------------------------------------------------------
class SlowRecorder(SegmentedRecorder):
    """A real :class:`app.recorder.SegmentedRecorder` behind a disk that takes ``delay_s`` per frame
    (a slow SD card, a busy network share)."""

    def __init__(self, *args, delay_s: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.delay_s = delay_s

    def write(self, frame, timestamp=None) -> None:
        time.sleep(self.delay_s)
        super().write(frame, timestamp)


def slow_writer_run(work: Path, seconds: float = 10.0, delay_s: float | None = 0.08, method: str = "gff",
                    size: tuple[int, int] = (320, 240), fps: float = 25.0) -> dict:
    """The camera-paced demo for ``seconds``: without recording (``delay_s`` None), or recording through a
    writer that needs ``delay_s`` per frame. Returns pipeline FPS, frames, writer drops and what was written."""
    from app.assembly import create_capture, pipeline_from_config
    from app.config import apply_overrides, load_config
    from app.recorder import readable_frames
    from app.recording import VideoSink

    cfg = apply_overrides(load_config(None), {"fusion.method": method, "sources.demo.width": size[0],
                                              "sources.demo.height": size[1], "sources.demo.fps": fps})
    pipeline = pipeline_from_config(cfg, create_capture(cfg), on_status=lambda m: None)
    sink = None
    if delay_s is not None:
        out = work / f"slow_{delay_s:g}_{time.monotonic_ns()}"
        sink = VideoSink(SlowRecorder(out / "slow.mp4", fps=fps, delay_s=delay_s), max_queue=32)
        pipeline.add_sink(sink)
    pipeline.prepare()
    summary = pipeline.run(timeout_s=seconds)
    result = {"writer_delay_ms": None if delay_s is None else delay_s * 1000, "camera_fps": fps,
              "pipeline_fps": summary["fps"], "frames": summary["frames"],
              "sinks_ms": summary["stage_ms"].get("sinks")}
    if sink is not None:
        sink.close()
        result.update(written=sink.thread.written, dropped=sink.thread.dropped,
                      readable=sum(readable_frames(p) for p in sink.recorder.finished_segments))
    return result


# ----- bad inputs -------------------------------------------------------------------------------------
def make_frame_folder(folder: Path, frames: int, size: tuple[int, int], colour: bool, seed: int = 0) -> Path:
    """``frames`` PNGs of a moving pattern (real files the folder source reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8)
    for i in range(frames):
        img = np.roll(base, 3 * i, axis=1)
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if colour else img)
    return folder


def folder_pair(work: Path, name: str, ir_frames: int = 40, rgb_frames: int = 40,
                size: tuple[int, int] = (160, 120)) -> tuple[Path, Path]:
    root = work / name
    return (make_frame_folder(root / "ir", ir_frames, size, colour=False),
            make_frame_folder(root / "rgb", rgb_frames, size, colour=True, seed=1))


@dataclass
class BadInput:
    """One fault: how to make it, and what the program must answer (exit status, words in its message)."""

    name: str
    issue: str  # how the issue describes the old behaviour
    run: Callable[[Path], tuple[Outcome, dict]]
    expect_rc: int
    expect_text: str


def _record_avi(work: Path):
    return run_app(["--headless", "--fast", "--frames", "5", "--method", "average", "--record", str(work / "x.avi")]), {}


def _record_twice(work: Path):
    args = ["--headless", "--fast", "--frames", "5", "--method", "average", "--record", str(work / "night.mp4")]
    run_app(args)
    first = work / "night_000.mp4"
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    outcome = run_app(args)
    kept = hashlib.sha256(first.read_bytes()).hexdigest() == digest
    return outcome, {"first_recording_unchanged": kept, "second": sorted(p.name for p in work.glob("night-2_*"))}


def _bogus_method_config(work: Path):
    cfg = write_config(work / "bogus.yaml", "fusion:\n  method: bogus\n")
    return run_app(["--headless", "--fast", "--frames", "5", "--config", str(cfg)]), {}


def _garbage_weights(work: Path):
    garbage = work / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 255, 4096, dtype=np.uint8).tobytes())
    return run_app(["--headless", "--fast", "--frames", "5", "--method", "m2pn", "--weights", str(garbage)]), {}


def _bad_frames(work: Path):
    ir, rgb = folder_pair(work, "bad_frames")
    (ir / "00003.png").write_bytes(b"")                                   # empty
    (ir / "00007.png").write_bytes((ir / "00007.png").read_bytes()[:200])  # truncated
    (rgb / "00011.png").write_bytes(b"not a png at all")                  # garbage
    cv2.imwrite(str(rgb / "00015.png"), np.zeros((60, 80, 3), np.uint8))  # wrong size
    outcome = run_app(["--headless", "--fast", "--method", "average", "--ir", str(ir), "--rgb", str(rgb)])
    return outcome, {"opencv_warnings": outcome.stderr.count("WARN"),
                     "skipped": outcome.summary_line("skipped frames:")}


def _vanishing_folder(work: Path):
    ir, rgb = folder_pair(work, "vanish", ir_frames=250, rgb_frames=250)
    run = LiveRun(["--headless", "--method", "average", "--ir", str(ir), "--rgb", str(rgb)])
    time.sleep(max(0.0, run.wait_first_frame() + 2.0 - time.monotonic()))  # 2 s into the 10 s of frames
    shutil.rmtree(ir)
    removed = time.monotonic()
    run_ended = None
    while run.proc.poll() is None:
        if run_ended is None and "end of stream" in run.stdout:
            run_ended = time.monotonic()
        time.sleep(0.01)
    outcome = run.finish()
    ended = time.monotonic()
    return outcome, {"seconds_from_removal_to_end_of_run": round((run_ended or ended) - removed, 2),
                     "seconds_from_removal_to_exit": round(ended - removed, 2),
                     "opencv_warnings": outcome.stderr.count("WARN"), "messages": outcome.status_lines("vanished")}


def _nothing_fused(work: Path):
    ir, rgb = work / "empty" / "ir", work / "empty" / "rgb"
    for folder in (ir, rgb):
        folder.mkdir(parents=True)
        for i in range(3):
            (folder / f"{i}.png").write_bytes(b"")
    return run_app(["--headless", "--fast", "--method", "average", "--ir", str(ir), "--rgb", str(rgb)]), {}


def _calibration_other_size(work: Path, viewer: bool = False):
    from calibration import Calibration, save_calibration

    cal = work / "cal_640x512.yaml"
    save_calibration(Calibration(homography=np.eye(3), ir_size=(640, 512), rgb_size=(640, 480)), cal)
    cfg = demo_config(work, 320, 240)
    mode = ["--frames", "20"] if viewer else ["--headless", "--frames", "20"]
    return run_app([*mode, "--fast", "--method", "average", "--config", str(cfg), "--calibration", str(cal)]), {}


def _shorter_thermal(work: Path):
    ir, rgb = folder_pair(work, "short", ir_frames=25, rgb_frames=250)  # 1 s of thermal, 10 s of colour
    outcome = run_app(["--headless", "--method", "average", "--ir", str(ir), "--rgb", str(rgb)])
    wall = re.search(r"wall: ([\d.]+) s", outcome.stdout)
    return outcome, {"run_wall_s": float(wall.group(1)) if wall else None, "frames": outcome.summary_line("frames:")}


def _no_display(work: Path):
    return run_app(["--frames", "2"], env=app_env(QT_QPA_PLATFORM=None, DISPLAY=None, WAYLAND_DISPLAY=None)), {}


def _missing_qt_libraries(work: Path):
    from app.display_check import missing_xcb_libraries

    missing = missing_xcb_libraries()
    outcome = run_app(["--frames", "2"], env=app_env(QT_QPA_PLATFORM=None, DISPLAY=":99", WAYLAND_DISPLAY=None))
    return outcome, {"missing_here": missing}


def _gstreamer(work: Path):
    return run_app(["--headless", "--frames", "2", "--method", "average", "--ir", "videotestsrc ! appsink",
                    "--rgb", "videotestsrc ! appsink"]), {}


BAD_INPUTS: list[BadInput] = [
    BadInput("--record x.avi", "silently wrote x_000.mp4", _record_avi, 2, "unsupported extension '.avi'"),
    BadInput("--record over an earlier recording", "overwrote it", _record_twice, 0, "already exists and is kept"),
    BadInput("fusion.method: bogus in a config", "fell back to gff, exit 0", _bogus_method_config, 2,
             "unknown fusion method 'bogus'"),
    BadInput("--method m2pn --weights garbage.pt", "fell back to gff, exit 0, multi-line message", _garbage_weights,
             2, "cannot be built"),
    BadInput("empty, truncated, garbage and wrong-size frames in folders", "skipped, only an 'unmatched' count",
             _bad_frames, 0, "skipped frames: thermal 1 empty, 1 corrupt; colour 1 corrupt, 1 wrong size"),
    BadInput("thermal folder deleted during the run", "219 raw OpenCV warnings", _vanishing_folder, 0, "vanished"),
    BadInput("no frame can be fused", "'recorded 0 frames', exit 0", _nothing_fused, 2, "no frame was fused"),
    BadInput("calibration made for another frame size (headless)", "two tracebacks, exit 1",
             _calibration_other_size, 2, "calibration file"),
    BadInput("calibration made for another frame size (viewer)", "window stuck on 'waiting for the first fused frame'",
             lambda w: _calibration_other_size(w, viewer=True), 2, "calibration file"),
    BadInput("thermal stream shorter than the colour one", "idled until the colour one ended", _shorter_thermal, 0,
             "end of stream"),
    BadInput("viewer with no display", "Qt abort, exit 134", _no_display, 2, "--headless"),
    BadInput("viewer without Qt's xcb libraries", "Qt abort naming an installed package", _missing_qt_libraries, 2,
             "apt-get install"),
    BadInput("GStreamer pipeline as a source", "'no such camera'", _gstreamer, 2, "without GStreamer"),
]


def run_bad_input(fault: BadInput, work: Path) -> dict:
    folder = work / re.sub(r"[^a-z0-9]+", "_", fault.name.lower()).strip("_")
    folder.mkdir(parents=True, exist_ok=True)
    outcome, extra = fault.run(folder)
    text = outcome.error_line or " / ".join(outcome.status_lines(fault.expect_text)) or outcome.summary_line(
        fault.expect_text.split(":")[0] + ":" if ":" in fault.expect_text else fault.expect_text)
    found = fault.expect_text in outcome.stdout + outcome.stderr
    return {"fault": fault.name, "before": fault.issue, "returncode": outcome.returncode,
            "message": text.strip(), "stderr_lines": outcome.stderr_lines, "seconds": round(outcome.seconds, 1),
            "traceback": "Traceback" in outcome.stderr + outcome.stdout,
            "as_expected": outcome.returncode == fault.expect_rc and found and "Traceback" not in outcome.stderr,
            **extra}


# ----- the report ---------------------------------------------------------------------------------------
def _details(result: dict) -> str:
    """The scenario-specific measurements of a bad-input result, for the report."""
    parts = []
    if "run_wall_s" in result:
        parts.append(f"run ended {result['run_wall_s']} s after it started (thermal: 1 s, colour: 10 s)")
    if "seconds_from_removal_to_exit" in result:
        if "seconds_from_removal_to_end_of_run" in result:
            parts.append(f"run ended {result['seconds_from_removal_to_end_of_run']} s after the folder was removed")
        parts.append(f"process exited after {result['seconds_from_removal_to_exit']} s (interpreter teardown)")
    if "opencv_warnings" in result:
        parts.append(f"{result['opencv_warnings']} OpenCV warnings")
    if "first_recording_unchanged" in result:
        parts.append("first recording unchanged" if result["first_recording_unchanged"] else "**first recording changed**")
    if result.get("missing_here"):
        parts.append("missing on this machine: " + ", ".join(result["missing_here"]))
    parts.append(f"{result['stderr_lines']} line(s) on stderr" + (", traceback" if result.get("traceback") else ""))
    return "; ".join(parts)


def markdown_report(kills: list[dict], slow: list[dict], bad: list[dict], command: str) -> str:
    lines = ["## Fault injection (`bench/faults.py`)", "", f"Command: `{command}`", "",
             "### kill -9 while recording", "",
             "The headless demo (camera-paced, 25 FPS, 640x480, `gff`) records the fused video and the raw "
             "session; the process is killed with SIGKILL the given time after its first fused frame. "
             "*Fused* is the progress count when the signal was sent (it lags by up to 0.1 s, about 2 frames); "
             "*recovered* is what a player decodes from the files left behind.", "",
             "| killed after | segments of | fused (FPS) | recovered (per segment) | lost | session pairs readable |",
             "|---|---|---|---|---|---|"]
    for k in kills:
        rate = k["fused_at_kill"] / k["kill_after_s"]
        lines.append(f"| {k['kill_after_s']:g} s | {k['segment_seconds']:g} s | {k['fused_at_kill']} ({rate:.1f}) | "
                     f"{k['frames_recovered']} ({', '.join(map(str, k['frames_per_segment']))}) | "
                     f"{k['frames_lost']} ({k['seconds_lost']:.2f} s) | {k['session_pairs_readable']} |")
    lines += ["", "### A writer slower than the camera", "",
              "Camera-paced demo at 25 FPS, 320x240, `gff`, 10 s per run; the recorder sleeps the given time before "
              "each frame (a slow disk). Fusion hands frames over and goes on; the writer drops what it cannot take.",
              "", "| writer | pipeline FPS | frames fused | sink stage ms | written | dropped | decodable |",
              "|---|---|---|---|---|---|---|"]
    for s in slow:
        writer = "no recording" if s["writer_delay_ms"] is None else f"{s['writer_delay_ms']:.0f} ms/frame"
        lines.append(f"| {writer} | {s['pipeline_fps']:.1f} | {s['frames']} | {s['sinks_ms']} | "
                     f"{s.get('written', '-')} | {s.get('dropped', '-')} | {s.get('readable', '-')} |")
    lines += ["", "### Bad inputs", "",
              "| fault | before (issue 14) | exit | what the user sees | measured | as expected |",
              "|---|---|---|---|---|---|"]
    for b in bad:
        message = re.sub(r"/tmp/faults_\w+/[^/ ]+/", "", b["message"]).replace("|", "\\|")
        if len(message) > 230:
            message = message[:227] + "..."
        lines.append(f"| {b['fault']} | {b['before']} | {b['returncode']} | {message} | {_details(b)} | "
                     f"{'yes' if b['as_expected'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    p.add_argument("--kill-after", type=float, nargs="+", default=[3.0, 8.0, 13.0],
                   help="seconds after the first frame to SIGKILL the recording run (5 s segments)")
    p.add_argument("--kill-long-segment", type=float, default=20.0,
                   help="one more kill with the default 60 s segments (the issue's case); 0 = skip")
    p.add_argument("--slow-delays-ms", type=float, nargs="+", default=[80.0, 200.0],
                   help="per-frame delay of the slow writer (the camera period is 40 ms)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each slow-writer run")
    p.add_argument("--markdown", type=Path, default=None, help="write the report section (Markdown)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--skip", nargs="*", default=[], choices=["kill", "slow", "bad"])
    args = p.parse_args(argv)
    command = "python -m bench.faults " + " ".join(argv if argv is not None else sys.argv[1:])
    kills, slow, bad = [], [], []
    with tempfile.TemporaryDirectory(prefix="faults_") as tmp:
        work = Path(tmp)
        if "kill" not in args.skip:
            plan = [(t, 5.0) for t in args.kill_after] + ([(args.kill_long_segment, 60.0)] if args.kill_long_segment else [])
            for after, seg in plan:
                kills.append(kill_while_recording(work, after, seg))
                print("kill -9:", json.dumps(kills[-1]), flush=True)
        if "slow" not in args.skip:
            # Interleaved: no recording, then each delay, twice, so drift in machine load shows.
            for _ in range(2):
                for delay in [None, *[d / 1000.0 for d in args.slow_delays_ms]]:
                    slow.append(slow_writer_run(work, args.seconds, delay))
                    print("slow writer:", json.dumps(slow[-1]), flush=True)
        if "bad" not in args.skip:
            for fault in BAD_INPUTS:
                bad.append(run_bad_input(fault, work))
                print("bad input:", json.dumps(bad[-1]), flush=True)
    report = markdown_report(kills, slow, bad, command)
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"kill": kills, "slow_writer": slow, "bad_inputs": bad, "command": command},
                                        indent=1))
    return 0 if all(b["as_expected"] for b in bad) else 1


if __name__ == "__main__":
    sys.exit(main())
