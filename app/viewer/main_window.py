"""The main window: fused stream (and the two inputs), method/palette selectors, FPS and latency,
detection overlay and threshold, record button, snapshot, replay controls and a status bar.

The window never fuses anything itself: the pipeline's worker threads do, and results arrive through
:class:`PipelineBridge` (a queued signal), so the GUI stays responsive whatever the method's speed.
"""

from __future__ import annotations

import copy
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import cv2
from PyQt6.QtCore import Qt, QTimer, qInstallMessageHandler
from PyQt6.QtGui import QAction, QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QApplication, QCheckBox, QComboBox, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QPushButton, QSlider,
    QVBoxLayout, QWidget,
)

from engine import available_methods
from engine.methods.display import PALETTES as PALETTE_LUTS

from ..config import AppConfig
from ..errors import AppError
from ..assembly import create_capture, pipeline_from_config
from ..pipeline import PALETTE_METHODS, FusionPipeline
from ..recorder import SegmentedRecorder, format_bytes
from ..recording import SessionSink, VideoSink
from .bridge import PipelineBridge
from .images import ImageView

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Space", "pause / resume"),
    ("Right", "step one frame (while paused)"),
    ("R", "start / stop recording the fused video"),
    ("S", "save a snapshot (PNG)"),
    ("D", "show / hide detections"),
    ("1 - 9", "switch fusion method (order of the Method list)"),
    ("F1", "this help"),
    ("Q / Esc", "quit"),
)
# Methods offered first (fast and meaningful ones), then everything else the registry knows.
PREFERRED_ORDER = ("m2pn_rt", "m2pn", "gff", "laplacian", "average", "max", "tif", "alpha_blend", "msx")
PALETTES = ("ironbow", "rainbow", "white_hot", "black_hot")
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)


def ordered_methods() -> list[str]:
    names = list(available_methods())
    return [m for m in PREFERRED_ORDER if m in names] + [m for m in names if m not in PREFERRED_ORDER]


class MainWindow(QMainWindow):
    """Viewer over a (not yet started) pipeline; :meth:`start` starts it, closing stops and joins it.

    Args:
        cfg: application config (viewer, recording and detector options).
        pipeline: the pipeline to show; its capture may be a live StereoCapture or a SessionReplay.
        stop_after: with ``screenshot``, save the window after this many displayed frames and close.
        screenshot: PNG path for ``stop_after``.
    """

    def __init__(self, cfg: AppConfig, pipeline: FusionPipeline, stop_after: int | None = None,
                 screenshot: str | None = None) -> None:
        super().__init__()
        self.cfg, self.pipeline = cfg, pipeline
        self.stop_after, self.screenshot_path = stop_after, screenshot
        self.frames_shown = 0
        self.latest = None
        self.recorder: SegmentedRecorder | None = None
        self.video_sink: VideoSink | None = None
        self.session_sink: SessionSink | None = None
        self.closed_cleanly = False
        self._ended_reported = False
        self.bridge = PipelineBridge()
        self.bridge.frame_ready.connect(self._on_frame, Qt.ConnectionType.QueuedConnection)
        self.bridge.status.connect(self.show_status, Qt.ConnectionType.QueuedConnection)
        pipeline.add_sink(self.bridge.sink)
        pipeline.add_status_listener(self.bridge.post_status)

        self.setWindowTitle("irvis-fusion — thermal + visible fusion")
        self.resize(cfg.viewer.width, cfg.viewer.height)
        self._build_views()
        self._build_controls()
        self._build_menu_and_shortcuts()
        self._stats_label = QLabel("FPS -   latency - ms")
        detector = pipeline.detector
        if detector is None:
            self._detector_label = QLabel("no detector configured")
        else:
            self._detector_label = QLabel(f"detector: {Path(str(getattr(detector, 'model_path', 'on'))).name}")
        self.statusBar().addPermanentWidget(self._detector_label)
        self.statusBar().addPermanentWidget(self._stats_label)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._refresh)
        self._timer.start(250)
        for message in pipeline.status_messages:  # said before the window existed (no detector, no calibration)
            self.show_status(message)

    # ----- layout --------------------------------------------------------------------------------------
    def _build_views(self) -> None:
        self.fused_view = ImageView("waiting for the first fused frame…")
        self.ir_view = ImageView("thermal")
        self.rgb_view = ImageView("colour")
        views = QHBoxLayout()
        views.addWidget(self.fused_view, 3)
        side = QVBoxLayout()
        side.addWidget(self._titled("Thermal", self.ir_view))
        side.addWidget(self._titled("Colour", self.rgb_view))
        self.sources_panel = QWidget()
        self.sources_panel.setLayout(side)
        self.sources_panel.setVisible(self.cfg.viewer.show_sources)
        views.addWidget(self.sources_panel, 1)
        self._views_layout = views

    @staticmethod
    def _titled(title: str, view: QWidget) -> QWidget:
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel(title))
        lay.addWidget(view, 1)
        return box

    def _build_controls(self) -> None:
        self.method_box = QComboBox()
        self.methods = ordered_methods()
        self.method_box.addItems(self.methods)
        if self.pipeline.options.method not in self.methods:
            self.method_box.addItem(self.pipeline.options.method)
        self.method_box.setCurrentText(self.pipeline.options.method)  # the one asked for, even if it fails
        self.method_box.setToolTip("fusion method (keys 1-9)")
        self.method_box.currentTextChanged.connect(self._on_method_chosen)
        self.palette_box = QComboBox()
        self.palette_box.addItems(PALETTES)
        self.palette_box.setCurrentText(self.pipeline.options.palette)
        self.palette_box.setToolTip("palette of the thermal display modes (alpha_blend, msx, palettes)")
        self.palette_box.currentTextChanged.connect(self.pipeline.set_palette)

        has_detector = self.pipeline.detector is not None
        self.detect_box = QCheckBox("Detections")
        self.detect_box.setChecked(has_detector and self.pipeline.show_detections)
        self.detect_box.setEnabled(has_detector)
        self.detect_box.setToolTip("YOLOv5 overlay (D)" if has_detector else
                                   "no detector model configured (detector.model or --detector MODEL.onnx)")
        self.detect_box.toggled.connect(self.set_detections_visible)
        self.video_box = QCheckBox("Video mode")
        self.video_box.setChecked(self.pipeline.video_mode)
        self.video_box.setToolTip("temporal stability: thermal gain jumps absorbed, flicker damped where nothing "
                                  "moves (fusion.video_mode; off for still images)")
        self.video_box.toggled.connect(self.set_video_mode)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setValue(int(round(self.cfg.detector.threshold * 100)))
        self.threshold_slider.setEnabled(has_detector)
        self.threshold_slider.setFixedWidth(110)
        self.threshold_label = QLabel(f"conf {self.threshold_slider.value() / 100:.2f}")
        self.threshold_slider.valueChanged.connect(self._on_threshold)

        self.record_button = QPushButton("● Record")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self._on_record_toggled)
        self.snapshot_button = QPushButton("Snapshot")
        self.snapshot_button.clicked.connect(self.save_snapshot)

        # Replay controls: enabled only when the capture is a replayed session.
        self.is_replay = all(hasattr(self.pipeline.capture, a) for a in ("seek", "set_speed", "length"))
        self.play_button = QPushButton("Pause")
        self.play_button.clicked.connect(self.toggle_pause)
        self.step_button = QPushButton("Step ▶|")
        self.step_button.clicked.connect(self.step)
        self.seek_slider = QSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setRange(0, max(0, int(getattr(self.pipeline.capture, "length", 0) or 0) - 1))
        self.seek_slider.sliderReleased.connect(self._on_seek)
        self.speed_box = QComboBox()
        self.speed_box.addItems([f"{s:g}x" for s in SPEEDS])
        self.speed_box.setCurrentText("1x")
        self.speed_box.currentIndexChanged.connect(self._on_speed)
        for w in (self.seek_slider, self.speed_box):
            w.setEnabled(self.is_replay)
            if not self.is_replay:
                w.setToolTip("replay controls: available when replaying a session (--replay)")

        row1 = QHBoxLayout()
        for w in (QLabel("Method"), self.method_box, QLabel("Palette"), self.palette_box, self.video_box, self.detect_box,
                  self.threshold_slider, self.threshold_label):
            row1.addWidget(w)
        row1.addStretch(1)
        row1.addWidget(self.snapshot_button)
        row1.addWidget(self.record_button)
        row2 = QHBoxLayout()
        for w in (self.play_button, self.step_button):
            row2.addWidget(w)
        row2.addWidget(self.seek_slider, 1)
        row2.addWidget(QLabel("Speed"))
        row2.addWidget(self.speed_box)

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.addLayout(self._views_layout, 1)
        lay.addLayout(row1)
        lay.addLayout(row2)
        self.setCentralWidget(central)

    def _build_menu_and_shortcuts(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for text, slot in (("Save snapshot", self.save_snapshot), ("Quit", self.close)):
            action = QAction(text, self)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        view_menu = menu.addMenu("&View")
        sources_action = QAction("Show thermal and colour inputs", self, checkable=True)
        sources_action.setChecked(self.cfg.viewer.show_sources)
        sources_action.toggled.connect(self.sources_panel.setVisible)
        view_menu.addAction(sources_action)
        help_menu = menu.addMenu("&Help")
        help_action = QAction("Keyboard shortcuts", self)
        help_action.triggered.connect(self.show_help)
        help_menu.addAction(help_action)

        bindings = [
            ("Space", self.toggle_pause), ("Right", self.step), ("R", self.record_button.toggle),
            ("S", self.save_snapshot), ("D", self.toggle_detections),
            ("Q", self.close), ("Esc", self.close), ("F1", self.show_help),
        ]
        bindings += [(str(i + 1), lambda i=i: self.select_method_index(i)) for i in range(min(9, len(self.methods)))]
        self._shortcuts = []
        for key, slot in bindings:
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.ApplicationShortcut)
            sc.activated.connect(slot)
            self._shortcuts.append(sc)

    def help_text(self) -> str:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in SHORTCUTS)
        methods = ", ".join(f"{i + 1} {m}" for i, m in enumerate(self.methods[:9]))
        return f"<table cellspacing=6>{rows}</table><p>Methods: {methods}</p>"

    def show_help(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", self.help_text())

    # ----- pipeline ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.pipeline.start()

    def _on_frame(self) -> None:
        result = self.bridge.take()
        if result is None:
            return
        self.latest = result
        self.fused_view.set_image(result.annotated)
        if self.sources_panel.isVisible():
            self.ir_view.set_image(self.thermal_preview(result.ir))
            self.rgb_view.set_image(result.rgb)
        if result.method != self.method_box.currentText():
            self.method_box.blockSignals(True)  # reflect a fallback without asking for a switch
            self.method_box.setCurrentText(result.method)
            self.method_box.blockSignals(False)
        if self.is_replay and not self.seek_slider.isSliderDown():
            self.seek_slider.setValue(int(getattr(self.pipeline.capture, "position", 0) or 0))
        self.frames_shown += 1
        if self.stop_after is not None and self.frames_shown >= self.stop_after:
            if self.screenshot_path:
                self.save_window(self.screenshot_path)
            self.close()

    def _refresh(self) -> None:
        stats = self.pipeline.stats
        fuse_ms = stats.stage_ms.get("fuse", 0.0)
        self._stats_label.setText(f"FPS {stats.fps:4.1f}   latency {stats.latency_ms:5.0f} ms   fuse {fuse_ms:4.0f} ms")
        if self.recorder is not None:
            t = int(self.recorder.elapsed_s)
            self.record_button.setText(f"■ {t // 60:02d}:{t % 60:02d}  {format_bytes(self.recorder.bytes_written)}")
        if self.pipeline.finished and not self._ended_reported:
            self._ended_reported = True
            self.play_button.setEnabled(False)
            if self.pipeline.error is not None:
                self.show_status(f"stopped: {self.pipeline.error}")
                if self.frames_shown == 0:  # nothing to look at: close, run_viewer says why and exits 2
                    self.close()

    def thermal_preview(self, ir):
        """(H, W) uint8 thermal in the palette the Palette box shows, so box and picture agree."""
        lut = PALETTE_LUTS.get(self.palette_box.currentText())
        if lut is None or ir.ndim != 2:
            return ir
        return cv2.LUT(cv2.cvtColor(ir, cv2.COLOR_GRAY2BGR), lut[None])

    def show_status(self, message: str) -> None:
        self.statusBar().showMessage(message, 8000)

    # ----- controls ----------------------------------------------------------------------------------
    def _on_method_chosen(self, name: str) -> None:
        if name and name != self.pipeline.method:
            self.pipeline.set_method(name)

    def select_method_index(self, i: int) -> None:
        if 0 <= i < len(self.methods):
            self.method_box.setCurrentIndex(i)

    def toggle_detections(self) -> None:
        if self.detect_box.isEnabled():
            self.detect_box.toggle()
        else:
            self.show_status("no detector model configured (set detector.model or --detector MODEL.onnx)")

    def set_detections_visible(self, visible: bool) -> None:
        self.pipeline.show_detections = bool(visible)
        self.show_status("detections shown" if visible else "detections hidden")

    def set_video_mode(self, on: bool) -> None:
        self.pipeline.set_video_mode(bool(on))
        self.show_status("video mode on: gain jumps absorbed, flicker damped" if on else "video mode off")

    def _on_threshold(self, value: int) -> None:
        self.pipeline.set_detection_threshold(value / 100.0)
        self.threshold_label.setText(f"conf {value / 100:.2f}")

    def toggle_pause(self) -> None:
        if self.pipeline.paused:
            self.pipeline.resume()
            self.play_button.setText("Pause")
            self.show_status("playing")
        else:
            self.pipeline.pause()
            self.play_button.setText("Play")
            self.show_status("paused (Right: step one frame)")

    def step(self) -> None:
        if not self.pipeline.paused:
            self.toggle_pause()
        self.pipeline.step()

    def _on_seek(self) -> None:
        if self.is_replay:
            self.pipeline.capture.seek(self.seek_slider.value())
            self.pipeline.reset_video_history()  # the video mode must not blend across the jump

    def _on_speed(self, index: int) -> None:
        if self.is_replay:
            self.pipeline.capture.set_speed(SPEEDS[index])

    def recording_path(self) -> Path:
        if self.cfg.recording.path:
            return Path(self.cfg.recording.path)
        return Path("recordings") / f"fused_{datetime.now():%Y%m%d_%H%M%S}.mp4"

    def _on_record_toggled(self, on: bool) -> None:
        if on:
            try:
                self.recorder = SegmentedRecorder(self.recording_path(), fps=self.cfg.recording.fps,
                                                  segment_seconds=self.cfg.recording.segment_seconds,
                                                  codec=self.cfg.recording.codec, on_status=self.bridge.post_status)
            except AppError as exc:
                self.show_status(f"cannot record: {exc}")
                self.record_button.blockSignals(True)
                self.record_button.setChecked(False)
                self.record_button.blockSignals(False)
                return
            self.video_sink = VideoSink(self.recorder, self.bridge.post_status)  # encodes on its own thread
            self.pipeline.add_sink(self.video_sink)
            message = f"recording to {self.recorder.segment_path(0)} ({self.recorder.codec})"
            if self.cfg.recording.session_dir:
                self._start_session_recording()
                if self.session_sink is not None:
                    message += f" + raw session {self.session_sink.writer.folder}"
            self.show_status(message)
        else:
            self.stop_recording()

    def _start_session_recording(self) -> None:
        """Raw pairs into a new folder under ``recording.session_dir`` (one per press of Record)."""
        folder = Path(self.cfg.recording.session_dir) / f"session_{datetime.now():%Y%m%d_%H%M%S}"
        cfg = copy.deepcopy(self.cfg)
        cfg.recording.session_dir = str(folder)
        try:
            self.session_sink = SessionSink(cfg, self.bridge.post_status)
        except AppError as exc:
            self.session_sink = None
            self.show_status(f"cannot record the raw session: {exc}")
            return
        self.pipeline.add_sink(self.session_sink)

    def stop_recording(self) -> None:
        video, self.video_sink = self.video_sink, None
        if video is not None:
            self.pipeline.remove_sink(video)
        self.recorder = None
        self.record_button.blockSignals(True)
        self.record_button.setChecked(False)
        self.record_button.blockSignals(False)
        self.record_button.setText("● Record")
        session, self.session_sink = self.session_sink, None
        if session is not None:
            self.pipeline.remove_sink(session)
            self.show_status(session.close())
        if video is not None:
            try:
                self.show_status(video.close())  # "recorded N frames ... in K segment(s) ..."
            except AppError as exc:
                self.show_status(str(exc))

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def save_snapshot(self) -> Path | None:
        """Save the newest fused frame (with overlays) as PNG in ``viewer.snapshot_dir``."""
        if self.latest is None:
            self.show_status("no frame to save yet")
            return None
        folder = Path(self.cfg.viewer.snapshot_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"snapshot_{datetime.now():%Y%m%d_%H%M%S}_{self.latest.index:06d}.png"
        if not cv2.imwrite(str(path), self.latest.annotated):
            self.show_status(f"cannot write snapshot {path}")
            return None
        self.show_status(f"snapshot saved: {path}")
        return path

    def save_window(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._refresh()
        if not self.grab().save(str(path)):
            self.show_status(f"cannot write screenshot {path}")

    # ----- shutdown ----------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self._timer.stop()
        self.pipeline.remove_sink(self.bridge.sink)
        self.stop_recording()
        self.pipeline.stop()  # joins the worker, detector and capture threads
        self.closed_cleanly = True
        super().closeEvent(event)


def _qt_message(mode, context, message: str) -> None:
    """Qt's own messages to stderr, less the offscreen platform's notes that it ignores window size hints."""
    if "propagateSizeHints" not in message:
        print(message, file=sys.stderr)


def run_viewer(cfg: AppConfig, replay: str | None = None, frames: int | None = None,
               screenshot: str | None = None, record: bool = False) -> int:
    """Open the viewer (on the demo, real sources or a replay, as ``cfg`` says) and run until closed.

    ``record``: start recording at once (``--record``/``--record-session`` on the command line).
    """
    if screenshot and frames is None:
        frames = 30
    qInstallMessageHandler(_qt_message)
    app = QApplication.instance() or QApplication(["irvis-fusion"])
    # Capture messages (source lost, reconnecting, end of stream) reach the status bar once the window exists.
    listeners: list = []
    capture = create_capture(cfg, replay=replay, on_status=lambda m: [f(m) for f in list(listeners)])
    pipeline = pipeline_from_config(cfg, capture)
    window = MainWindow(cfg, pipeline, stop_after=frames, screenshot=screenshot)
    listeners.append(window.bridge.post_status)
    # Ctrl-C in the terminal closes the window cleanly (Qt would otherwise swallow it until an event
    # arrives); the idle timer gives the Python signal handler a chance to run.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    window.show()
    window.start()
    if record:
        window.record_button.setChecked(True)
    started = time.monotonic()
    app.exec()
    if screenshot:
        print(f"screenshot saved: {screenshot} after {window.frames_shown} frames "
              f"({time.monotonic() - started:.1f} s)")
    if pipeline.error is not None and isinstance(pipeline.error, AppError):
        raise pipeline.error
    return 1 if pipeline.error is not None else 0
