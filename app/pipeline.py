"""`FusionPipeline`: newest pair -> gain -> registration -> fusion -> detection -> overlay -> sinks.

It runs in worker threads, headless or under the viewer (never on a GUI thread)::

    capture = StereoCapture(ir_source, rgb_source)          # or SessionReplay(folder)
    pipeline = FusionPipeline(capture, PipelineOptions(method="gff"))
    pipeline.add_sink(lambda result: ...)                   # called with each FusedFrame, on the worker thread
    summary = pipeline.run(max_frames=100)                  # headless: start, wait, stop
    # or pipeline.start() ... pipeline.stop()               # stop() joins every thread

Design choices:

* The worker always takes the *newest* pair from the capture (the capture drops stale ones), so a slow
  method lowers the frame rate but never builds up latency or memory.
* Detection runs in its own thread at its own pace (``detector_async``): the worker hands it the newest
  fused frame through a one-slot mailbox and draws the newest boxes it has on every frame.
* The fusion method can be switched at run time from any thread (:meth:`set_method`): the request is
  picked up by the worker between frames; a method that cannot be built keeps the current one and says so.
* Per-stage timings (read, gain, register, fuse, detect, draw, sinks; ms), FPS and latency are kept in
  :class:`PipelineStats`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import cv2
import numpy as np

from engine import FusionEngine, FusionError
from engine.temporal import VideoMode

from .annotate import draw_detections
from .errors import AppError

log = logging.getLogger(__name__)

STAGES = ("read", "gain", "register", "video", "fuse", "detect", "draw", "sinks")
PALETTE_METHODS = ("white_hot", "black_hot", "ironbow", "rainbow")
PALETTED_METHODS = ("alpha_blend", "msx")  # display modes that take a ``palette`` option
NETWORK_METHODS = ("m2pn", "m2pn_rt")  # methods that take ``backend`` and ``weights`` options
ENTITY_METHODS = ("egmt", "egmt_rt")  # methods guided by entity names (detector, else ``entities``, else all known)


def first_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's message on one line (unpickling and ONNX errors run to many lines, torch's to a
    paragraph: a long line is cut after its first sentence)."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    end = line.find(". ")
    return line[: end + 1] if len(line) > limit and end > 0 else line


class PairSource(Protocol):
    """What the pipeline pulls from: ``app.capture.StereoCapture`` or ``app.session.SessionReplay``."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def get_pair(self, timeout: float | None = None) -> Any: ...  # FramePair | None
    @property
    def ended(self) -> bool: ...


@dataclass
class FusedFrame:
    """One pipeline result.

    Attributes:
        fused: (H, W, 3) uint8 BGR fused image, without overlays.
        annotated: ``fused`` with the detection overlay (the same array when there is nothing to draw).
        ir: (H, W) uint8 thermal after gain control and registration (on the RGB grid).
        rgb: (H, W, 3) uint8 BGR colour image on the same grid.
        timestamp: capture time of the pair (colour frame's clock), seconds.
        index: index of the colour frame in its stream.
        method: the fusion method that made ``fused``.
        timings: stage -> milliseconds for this frame (see ``STAGES``).
        detections: the newest detections (possibly found on an earlier frame when detection is slower).
        latency_ms: from the pair being taken from the capture to the result reaching the sinks.
        pair: the raw ``FramePair`` (raw 16-bit thermal kept) for session recording.
    """

    fused: np.ndarray
    annotated: np.ndarray
    ir: np.ndarray
    rgb: np.ndarray
    timestamp: float
    index: int
    method: str
    timings: dict[str, float]
    detections: list = field(default_factory=list)
    latency_ms: float = 0.0
    pair: Any = None


@dataclass
class PipelineOptions:
    """How the pipeline processes pairs.

    Attributes:
        method: fusion method name (``engine.available_methods()``).
        fallbacks: tried in order when ``method`` cannot be built (e.g. missing weights).
        method_options: keyword options for the method constructor.
        backend: inference backend of the network methods (``auto`` | ``cpu`` | ``cuda`` | ``tensorrt``).
        weights: M2PN weights file of the network methods (None: ``engine/weights/m2pn.pt``).
        palette: palette for the thermal display modes (alpha_blend, msx).
        show_detections: draw the overlay (detection still runs, so toggling back is instant).
        detector_async: run the detector in its own thread (False: inline, deterministic; for tests/benchmarks).
        get_timeout_s: how long the worker waits for a pair before checking for stop/end.
        video_mode: temporal stability for video (``engine.temporal.VideoMode``: thermal gain jumps absorbed,
            flicker damped where nothing moves); off for still images. Switch with ``set_video_mode``.
    """

    method: str = "gff"
    fallbacks: tuple[str, ...] = ("average",)
    method_options: dict = field(default_factory=dict)
    backend: str = "auto"
    weights: str | None = None
    palette: str = "ironbow"
    show_detections: bool = True
    detector_async: bool = True
    get_timeout_s: float = 0.1
    entities: tuple[str, ...] = ()  # EGMT entity names used while detection is off; empty = all the model knows
    video_mode: bool = False


class PipelineStats:
    """Thread-safe running figures: frames, FPS over the last ~2 s, mean stage timings (EMA)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._times: collections.deque[float] = collections.deque()
        self.window_s = window_s
        self.frames = 0
        self.stage_ms: dict[str, float] = {}
        self.stage_total_ms: dict[str, float] = collections.defaultdict(float)
        self.latency_ms = 0.0
        self._first_at: float | None = None
        self._last_at = 0.0

    def record(self, timings: dict[str, float], latency_ms: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames += 1
            if self._first_at is None:
                self._first_at = now
            self._last_at = now
            self._times.append(now)
            while self._times and now - self._times[0] > self.window_s:
                self._times.popleft()
            for stage, ms in timings.items():
                prev = self.stage_ms.get(stage)
                self.stage_ms[stage] = ms if prev is None else 0.8 * prev + 0.2 * ms
                self.stage_total_ms[stage] += ms
            self.latency_ms = latency_ms if self.frames == 1 else 0.8 * self.latency_ms + 0.2 * latency_ms

    @property
    def fps(self) -> float:
        """Frames per second over the last window."""
        with self._lock:
            if len(self._times) < 2:
                return 0.0
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    @property
    def mean_fps(self) -> float:
        """Frames per second over the whole run, from the first result to the last (start-up, such as
        building a network, is not counted)."""
        with self._lock:
            if self.frames < 2 or self._first_at is None:
                return 0.0
            return (self.frames - 1) / max(self._last_at - self._first_at, 1e-9)

    def mean_stage_ms(self) -> dict[str, float]:
        with self._lock:
            return {s: t / max(self.frames, 1) for s, t in self.stage_total_ms.items()}


class FusionPipeline:
    """See the module docstring.

    Args:
        capture: a :class:`PairSource` (StereoCapture or SessionReplay); started/stopped by the pipeline.
        options: :class:`PipelineOptions`.
        gain: object with ``apply(raw) -> uint8`` for the thermal frame (default ``app.gain.GainControl()``:
            1-99 percentile stretch, limits fixed after the first frame).
        registrar: object with ``register(ir, rgb) -> (ir, rgb)``; None = resize thermal to the RGB size.
        detector: object with ``detect(bgr) -> list[Detection]`` (e.g. ``YoloV5Detector``), or None.
        on_status: called (from worker threads) with messages users should see.
    """

    def __init__(self, capture: PairSource, options: PipelineOptions | None = None, gain=None, registrar=None,
                 detector=None, on_status: Callable[[str], None] | None = None) -> None:
        self.capture = capture
        self.options = options or PipelineOptions()
        self.gain = gain if gain is not None else self._default_gain()
        self.registrar = registrar
        self.detector = detector
        self.stats = PipelineStats()
        self._status_listeners: list[Callable[[str], None]] = [on_status] if on_status else []
        self._status_log: collections.deque[str] = collections.deque(maxlen=200)
        self._sinks: list[Callable[[FusedFrame], None]] = []
        self._sink_lock = threading.Lock()
        self._engine: FusionEngine | None = None
        self._method_name: str | None = None
        self._method_lock = threading.Lock()
        self._pending_method: tuple[str, dict] | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._paused = threading.Event()
        self._step_requests = 0
        self._threads: list[threading.Thread] = []
        self._resize_noted = False
        self._last_pair = None
        self._reprocess = False
        self._video: VideoMode | None = VideoMode() if self.options.video_mode else None
        self._video_reset = threading.Event()
        self.error: BaseException | None = None
        self.show_detections = self.options.show_detections
        # Detection mailbox: the newest fused frame waiting for the detector thread, and its newest result.
        self._det_cond = threading.Condition()
        self._det_input: np.ndarray | None = None
        self._detections: list = []
        self._detect_ms = 0.0
        self.max_frames: int | None = None

    @classmethod
    def from_sources(cls, ir_source, rgb_source, options: PipelineOptions | None = None, lockstep: bool = False,
                     tolerance_s: float = 0.020, **kwargs) -> "FusionPipeline":
        """Pipeline over two FrameSources: paired by ``app.capture.StereoCapture`` (newest pair, stale
        frames dropped), or frame-by-frame in lockstep (deterministic; benchmarks of the processing alone).

        Example (a benchmark)::

            ir, rgb = open_demo_pair(1280, 720, frames=None, realtime=False)
            summary = FusionPipeline.from_sources(ir, rgb, PipelineOptions(method="gff"), lockstep=True).run(100)
        """
        from .capture import LockstepCapture, StereoCapture

        if lockstep:
            capture = LockstepCapture(ir_source, rgb_source)
        else:
            capture = StereoCapture(ir_source, rgb_source, tolerance_s=tolerance_s)
        return cls(capture, options, **kwargs)

    # ----- wiring ----------------------------------------------------------------------------------
    @staticmethod
    def _default_gain():
        from .gain import GainControl

        return GainControl()

    def add_sink(self, sink: Callable[[FusedFrame], None]) -> None:
        """Call ``sink(result)`` with every FusedFrame, on the worker thread (keep it quick)."""
        with self._sink_lock:
            self._sinks.append(sink)

    def remove_sink(self, sink: Callable[[FusedFrame], None]) -> None:
        with self._sink_lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def add_status_listener(self, listener: Callable[[str], None]) -> None:
        self._status_listeners.append(listener)

    def status(self, message: str) -> None:
        """Report a message to every listener (status bar, console) and keep it in :attr:`status_messages`."""
        log.info(message)
        self._status_log.append(message)
        for listener in list(self._status_listeners):
            try:
                listener(message)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the pipeline
                log.exception("status listener failed")

    @property
    def status_messages(self) -> list[str]:
        return list(self._status_log)

    # ----- fusion method ---------------------------------------------------------------------------
    @property
    def method(self) -> str | None:
        """Name of the method in use (None before the worker has built one)."""
        return self._method_name

    def _method_options(self, name: str, options: dict) -> dict:
        opts = dict(options)
        if name in PALETTED_METHODS:
            opts.setdefault("palette", self.options.palette)
        if name in ENTITY_METHODS and self.options.entities:
            opts.setdefault("entities", list(self.options.entities))
        if name in NETWORK_METHODS:
            opts.setdefault("backend", self.options.backend)
            if self.options.weights:
                opts.setdefault("weights", self.options.weights)
        return opts

    @staticmethod
    def describe_engine(engine: FusionEngine) -> str:
        """``m2pn_rt on cpu (onnxruntime, fp32)`` for network methods (plus why, when an explicitly requested
        backend fell back), else the method name."""
        backend = getattr(engine.method, "backend", None)
        entities = getattr(engine.method, "entity_status", None)  # EGMT: which entities guide it
        tail = f"; {entities}" if entities else ""
        if not isinstance(backend, str):
            return engine.name + tail
        text = f"{engine.name} on {backend}"
        choice = getattr(engine.method, "backend_choice", None)
        if choice is not None and choice.fallbacks and choice.requested != "auto":  # auto -> cpu is no news
            text += f" (requested {choice.requested}: {'; '.join(choice.fallbacks)})"
        return text + tail

    def build_engine(self) -> FusionEngine:
        """Build the configured method, falling back through ``options.fallbacks`` with a status message."""
        names = [self.options.method, *[f for f in self.options.fallbacks if f != self.options.method]]
        failures = []
        for i, name in enumerate(names):
            opts = self.options.method_options if i == 0 else {}
            try:
                engine = FusionEngine(name, **self._method_options(name, opts))
            except (FusionError, TypeError, ValueError, OSError) as exc:
                failures.append(f"{name}: {first_line(exc)}")
                continue
            if failures:
                self.status(f"fusion method {self.options.method!r} unavailable ({'; '.join(failures)}); "
                            f"using {name!r}")
            return engine
        if len(names) == 1:  # asked for explicitly (no fallbacks): the reason is the message
            raise AppError(f"fusion method {failures[0].replace(': ', ' cannot be built: ', 1)}")
        raise AppError("no fusion method could be built: " + "; ".join(failures))

    def prepare(self) -> None:
        """Build the fusion method now (on the caller's thread) instead of in the worker, so that a method
        that cannot be built is an error before anything runs (headless start-up)."""
        if self._engine is None:
            self._engine = self.build_engine()
            self._method_name = self._engine.name

    def set_method(self, name: str, **options) -> None:
        """Switch the fusion method (thread-safe); applied by the worker before its next frame."""
        with self._method_lock:
            self._pending_method = (name, options)
            if self._paused.is_set():
                self._reprocess = True

    def set_palette(self, palette: str) -> None:
        """Palette of the thermal display modes: switches a palette method, or rebuilds alpha_blend/msx."""
        self.options.palette = palette
        current = self.method
        if current in PALETTE_METHODS:
            self.set_method(palette)
        elif current in PALETTED_METHODS:
            self.set_method(current, palette=palette)

    @property
    def video_mode(self) -> bool:
        return self._video is not None

    def set_video_mode(self, on: bool) -> None:
        """Video mode on/off (thread-safe); it starts with no history, so switching it on shows no old frame."""
        self._video = VideoMode() if on else None
        self.options.video_mode = bool(on)
        with self._method_lock:
            if self._paused.is_set():
                self._reprocess = True

    def reset_video_history(self) -> None:
        """The next pair does not follow the last one (a seek): the video mode and a streaming method start
        over with it instead of blending across the jump. Thread-safe; applied by the worker."""
        self._video_reset.set()

    def _apply_pending_method(self) -> None:
        with self._method_lock:
            pending, self._pending_method = self._pending_method, None
        if pending is None:
            return
        name, options = pending
        try:
            engine = FusionEngine(name, **self._method_options(name, options))
        except (FusionError, TypeError, ValueError, OSError) as exc:
            self.status(f"cannot switch to fusion method {name!r}: {first_line(exc)}; keeping {self.method!r}")
            return
        old, self._engine = self._engine, engine
        self._method_name = engine.name
        video = self._video
        if video is not None:
            video.reset()  # frames of the old method must not blend into the new one
        if old is not None:
            old.close()
        self.status(f"fusion method: {self.describe_engine(engine)}")

    # ----- detection -------------------------------------------------------------------------------
    @property
    def detections(self) -> list:
        return list(self._detections)

    def _update_entities(self) -> None:
        """EGMT methods: while detection is on, the detector's class names on the newest frames guide the
        next fusion (the method reports a change, for the status bar); with detection off, its own default."""
        update = getattr(self._engine.method, "set_entities", None)
        if update is not None:
            names = [d.label for d in self._detections] if self.detector is not None else None
            message = update(names)
            if message:
                self.status(message)

    def set_detection_threshold(self, threshold: float) -> None:
        if self.detector is not None:
            self.detector.conf_threshold = float(threshold)

    def _detector_loop(self) -> None:
        while True:
            with self._det_cond:
                while self._det_input is None and not self._stop.is_set():
                    self._det_cond.wait(0.2)
                if self._stop.is_set():
                    return
                frame, self._det_input = self._det_input, None
            t0 = time.perf_counter()
            try:
                detections = self.detector.detect(frame)
            except Exception as exc:  # noqa: BLE001 - report once and stop detecting, keep fusing
                self.status(f"detector failed and is switched off: {exc}")
                self.detector = None
                return
            self._detect_ms = (time.perf_counter() - t0) * 1000.0
            self._detections = detections

    # ----- control ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the capture and the worker threads (returns at once)."""
        if self._threads:
            raise AppError("the pipeline is already running")
        self._stop.clear()
        self._done.clear()
        self.capture.start()
        worker = threading.Thread(target=self._worker, name="fusion-worker", daemon=True)
        self._threads.append(worker)
        if self.detector is not None and self.options.detector_async:
            self._threads.append(threading.Thread(target=self._detector_loop, name="detector", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker threads and the capture; joins every thread. Safe to call twice."""
        self._stop.set()
        with self._det_cond:
            self._det_cond.notify_all()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
        self._threads = []
        try:
            self.capture.stop()
        finally:
            if self._engine is not None:
                self._engine.close()
                self._engine = None

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def finished(self) -> bool:
        """True once the worker has ended (end of stream, frame limit, or error)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def pause(self) -> None:
        self._paused.set()
        if hasattr(self.capture, "pause"):
            self.capture.pause()

    def resume(self) -> None:
        self._paused.clear()
        if hasattr(self.capture, "resume"):
            self.capture.resume()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def step(self) -> None:
        """While paused: process exactly one more pair (a replay advances by one frame)."""
        if hasattr(self.capture, "step"):
            self.capture.step()
        with self._method_lock:
            self._step_requests += 1

    def run(self, max_frames: int | None = None, timeout_s: float | None = None,
            progress: Callable[[int], None] | None = None) -> dict:
        """Headless: start, process until ``max_frames`` results, end of stream or ``timeout_s``; stop.

        ``progress(frames_done)`` is called about ten times a second from the calling thread.
        Ctrl-C stops cleanly (every thread joined, sinks finished by the caller) and still returns the summary.
        Returns :meth:`summary`.
        """
        self.max_frames = max_frames
        self.start()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while not self._done.wait(0.1):
                if progress is not None:
                    progress(self.stats.frames)
                if deadline is not None and time.monotonic() > deadline:
                    self.status(f"stopped after the {timeout_s:g} s time limit")
                    break
        except KeyboardInterrupt:
            self.status("interrupted (Ctrl-C)")
        finally:
            self.stop()
            if progress is not None:
                progress(self.stats.frames)
        if self.error is not None:
            raise self.error
        return self.summary()

    def summary(self) -> dict:
        """Frames, FPS, mean stage timings, the capture's pairing figures (drops) and skipped frames by kind."""
        capture_stats = getattr(self.capture, "stats", None)
        pairing = {}
        if capture_stats is not None:
            for key in ("paired", "dropped", "unmatched"):
                if hasattr(capture_stats, key):
                    pairing[key] = getattr(capture_stats, key)
        return {
            "frames": self.stats.frames,
            "fps": round(self.stats.mean_fps, 2),
            "method": self.method or self.options.method,
            "stage_ms": {k: round(v, 2) for k, v in self.stats.mean_stage_ms().items()},
            "latency_ms": round(self.stats.latency_ms, 2),
            "pairing": pairing,
            "skipped": getattr(self.capture, "frame_problems", {}),  # {"thermal": {"corrupt": 3}, ...}
        }

    # ----- the worker ------------------------------------------------------------------------------
    def _worker(self) -> None:
        try:
            self.prepare()
            if self._engine.name == self.options.method:  # a fallback has already said what it uses
                self.status(f"fusion method: {self.describe_engine(self._engine)}")
            while not self._stop.is_set():
                self._apply_pending_method()
                if self.max_frames is not None and self.stats.frames >= self.max_frames:
                    break
                pair, read_ms = self._next_pair()
                if pair is None:
                    if self.capture.ended:
                        self.status("end of stream")
                        break
                    continue
                self._process(pair, read_ms)
        except AppError as exc:
            self.error = exc
            self.status(str(exc))
        except FusionError as exc:
            self.error = AppError(str(exc))
            self.status(str(exc))
        except Exception as exc:  # noqa: BLE001 - surface to the caller of run()/viewer, not a silent thread death
            log.exception("pipeline worker failed")
            self.error = exc
            self.status(f"pipeline stopped by an internal error: {exc!r}")
        finally:
            self._done.set()

    def _next_pair(self) -> tuple[Any, float]:
        """The pair to process next, honouring pause/step; (None, 0) when there is none yet."""
        if self._paused.is_set():
            with self._method_lock:
                stepping = self._step_requests > 0
                if stepping:
                    self._step_requests -= 1
                reprocess, self._reprocess = self._reprocess, False
            if reprocess and self._last_pair is not None and not stepping:
                self._apply_pending_method()
                return self._last_pair, 0.0
            if not stepping:
                time.sleep(0.02)
                return None, 0.0
        t0 = time.perf_counter()
        pair = self.capture.get_pair(timeout=self.options.get_timeout_s)
        return pair, (time.perf_counter() - t0) * 1000.0

    def _register(self, ir: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.registrar is not None:
            return self.registrar.register(ir, rgb)
        if ir.shape[:2] != rgb.shape[:2]:
            if not self._resize_noted:
                self._resize_noted = True
                self.status(f"no calibration file: thermal {ir.shape[1]}x{ir.shape[0]} resized to the colour "
                            f"size {rgb.shape[1]}x{rgb.shape[0]} (not registered)")
            ir = cv2.resize(ir, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        return ir, rgb

    def _process(self, pair, read_ms: float) -> None:
        t_start = time.perf_counter()
        timings = {"read": read_ms}
        self._last_pair = pair

        t0 = time.perf_counter()
        ir = self.gain.apply(pair.ir.image)
        if ir.ndim == 3:
            ir = cv2.cvtColor(ir, cv2.COLOR_BGR2GRAY)
        rgb = pair.rgb.image
        if rgb.ndim == 2:
            rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR)
        timings["gain"] = (time.perf_counter() - t0) * 1000.0

        t0 = time.perf_counter()
        ir, rgb = self._register(ir, rgb)
        timings["register"] = (time.perf_counter() - t0) * 1000.0

        t0 = time.perf_counter()
        video = self._video
        method = self._engine.method
        if self._video_reset.is_set():
            self._video_reset.clear()
            if video is not None:
                video.reset()
            if hasattr(method, "reset_stream"):
                method.reset_stream()
        if getattr(method, "streaming", video is not None) != (video is not None):
            method.set_streaming(video is not None)  # m2pn_rt: overlap its network with the pipeline on video
        if video is not None:
            ir = video.stabilize_thermal(ir, rgb)  # camera gain jumps taken out before fusion
        video_ms = (time.perf_counter() - t0) * 1000.0

        t0 = time.perf_counter()
        fused = self._engine.fuse(ir, rgb)
        if fused.ndim == 2:
            fused = cv2.cvtColor(fused, cv2.COLOR_GRAY2BGR)
        timings["fuse"] = (time.perf_counter() - t0) * 1000.0

        t0 = time.perf_counter()
        if video is not None:
            fused = video.filter(fused)
        timings["video"] = video_ms + (time.perf_counter() - t0) * 1000.0

        t0 = time.perf_counter()
        if self.detector is not None:
            if self.options.detector_async:
                with self._det_cond:
                    self._det_input = fused  # overwrite: the detector only ever sees the newest frame
                    self._det_cond.notify()
            else:
                self._detections = self.detector.detect(fused)
                self._detect_ms = (time.perf_counter() - t0) * 1000.0
        timings["detect"] = self._detect_ms if self.detector is not None else 0.0
        self._update_entities()

        t0 = time.perf_counter()
        detections = self.detections if self.detector is not None else []
        annotated = draw_detections(fused, detections) if (detections and self.show_detections) else fused
        timings["draw"] = (time.perf_counter() - t0) * 1000.0

        result = FusedFrame(
            fused=fused, annotated=annotated, ir=ir, rgb=rgb, timestamp=float(pair.rgb.timestamp),
            index=int(pair.rgb.index), method=self._engine.name, timings=timings, detections=detections,
            pair=pair,
        )
        t0 = time.perf_counter()
        with self._sink_lock:
            sinks = list(self._sinks)
        for sink in sinks:
            try:
                sink(result)
            except AppError as exc:
                # A failing sink (disk full while recording) is dropped; fusion and the other sinks go on.
                self.status(str(exc))
                self.remove_sink(sink)
        timings["sinks"] = (time.perf_counter() - t0) * 1000.0
        result.latency_ms = (time.perf_counter() - t_start) * 1000.0
        self.stats.record(timings, result.latency_ms)


# Names that lived here before assembly moved to app.assembly (and LockstepCapture to app.capture).
_MOVED = {"LockstepCapture": "app.capture", "create_capture": "app.assembly", "create_gain": "app.assembly",
          "create_registrar": "app.assembly", "create_detector": "app.assembly",
          "pipeline_from_config": "app.assembly"}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
