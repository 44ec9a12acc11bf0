"""YOLOv5 object detection on the fused frame, from a standard YOLOv5 ONNX export.

Model contract (what ``export.py --include onnx`` of YOLOv5 produces):

* input ``[1, 3, S, S]`` float32, RGB, values 0..1 (S is usually 640);
* output ``[1, N, 5 + C]``: per candidate ``cx, cy, w, h`` (pixels of the S x S input), objectness,
  then C class scores (already sigmoid-activated);
* class names in the model metadata (``names``: a dict literal ``{0: 'person', ...}``), else a names
  file, else the 80 COCO names.

Pipeline: letterbox the BGR frame to S x S (keep aspect, pad with gray 114), run, keep candidates
whose ``objectness * best class score`` passes the threshold, convert to corner boxes, undo the
letterbox, then class-aware NMS. ONNX Runtime runs the model; OpenCV DNN is the fallback.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .errors import AppError

log = logging.getLogger(__name__)

COCO_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)
LETTERBOX_FILL = 114


class DetectorError(AppError):
    """The detector model cannot be loaded or run (missing file, wrong output layout)."""


@dataclass(frozen=True)
class Detection:
    """One box in pixel coordinates of the frame it was found on."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int
    label: str

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the square model input: ``model_xy = frame_xy * scale + (pad_x, pad_y)``."""

    scale: float
    pad_x: float
    pad_y: float


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to ``size`` x ``size`` with gray 114, centred.

    Args:
        image: (H, W, 3) uint8.
    Returns:
        (size, size, 3) uint8 padded image and the :class:`Letterbox` transform.
    """
    h, w = image.shape[:2]
    scale = min(size / h, size / w)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR) if (new_w, new_h) != (w, h) else image
    pad_x, pad_y = (size - new_w) / 2.0, (size - new_h) / 2.0
    top, left = int(round(pad_y - 0.1)), int(round(pad_x - 0.1))
    out = cv2.copyMakeBorder(resized, top, size - new_h - top, left, size - new_w - left,
                             cv2.BORDER_CONSTANT, value=(LETTERBOX_FILL,) * 3)
    return out, Letterbox(scale, float(left), float(top))


def undo_letterbox(boxes: np.ndarray, lb: Letterbox, frame_shape: tuple[int, int]) -> np.ndarray:
    """Map (N, 4) x1, y1, x2, y2 boxes from model input pixels back to frame pixels, clipped to the frame."""
    out = boxes.astype(np.float32).copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - lb.pad_x) / lb.scale
    out[:, [1, 3]] = (out[:, [1, 3]] - lb.pad_y) / lb.scale
    h, w = frame_shape[:2]
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression, vectorised over the remaining boxes.

    Args:
        boxes: (N, 4) x1, y1, x2, y2; scores: (N,).
    Returns:
        indices of the kept boxes, highest score first.
    """
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def class_aware_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float) -> np.ndarray:
    """NMS that never lets a box of one class suppress a box of another: each class is shifted to its own
    region of the plane (the usual offset trick), then one NMS pass runs."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    offset = (boxes.max() - boxes.min() + 1.0) * class_ids.astype(np.float32)[:, None]
    return nms(boxes + offset, scores, iou_threshold)


def decode_predictions(pred: np.ndarray, conf_threshold: float, iou_threshold: float,
                       allowed_classes: Sequence[int] | None = None, max_detections: int = 300
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YOLOv5 raw output rows -> boxes after threshold and class-aware NMS, in model-input pixels.

    Args:
        pred: (N, 5 + C) or (1, N, 5 + C): cx, cy, w, h, objectness, C class scores.
        conf_threshold: keep rows whose objectness x best class score is at least this.
        allowed_classes: class ids to keep (None = all).
    Returns:
        boxes (K, 4) x1, y1, x2, y2; scores (K,); class_ids (K,) int, best first.
    """
    pred = np.asarray(pred, dtype=np.float32)
    if pred.ndim == 3:
        pred = pred[0]
    if pred.ndim != 2 or pred.shape[1] < 6:
        raise DetectorError(f"detector output has shape {pred.shape}; expected [1, N, 5 + classes] (YOLOv5 layout)")
    cls_scores = pred[:, 5:] * pred[:, 4:5]
    if allowed_classes is not None:
        mask = np.zeros(cls_scores.shape[1], bool)
        mask[[c for c in allowed_classes if 0 <= c < cls_scores.shape[1]]] = True
        cls_scores = np.where(mask[None, :], cls_scores, 0.0)
    class_ids = cls_scores.argmax(axis=1)
    scores = cls_scores[np.arange(len(pred)), class_ids]
    keep = scores >= conf_threshold
    if allowed_classes is not None:
        keep &= np.isin(class_ids, list(allowed_classes))
    p, scores, class_ids = pred[keep], scores[keep], class_ids[keep]
    boxes = np.stack([p[:, 0] - p[:, 2] / 2, p[:, 1] - p[:, 3] / 2, p[:, 0] + p[:, 2] / 2, p[:, 1] + p[:, 3] / 2], 1)
    kept = class_aware_nms(boxes, scores, class_ids, iou_threshold)[:max_detections]
    return boxes[kept].reshape(-1, 4), scores[kept], class_ids[kept].astype(np.int64)


def read_names_file(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or a YOLO data YAML with a ``names`` list/dict."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DetectorError(f"cannot read class names file {path}: {exc}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        names = (yaml.safe_load(text) or {}).get("names")
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names)]
        if isinstance(names, list):
            return [str(n) for n in names]
        raise DetectorError(f"{path}: no 'names' list in this YAML file")
    return [line.strip() for line in text.splitlines() if line.strip()]


def names_from_metadata(value: str) -> list[str] | None:
    """Parse YOLOv5's ``names`` metadata (a dict or list literal); None when it is not parseable."""
    try:
        names = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    return None


def _onnx_input_size(path: Path, default: int = 640) -> int:
    """Square input side S of an ONNX model's [1, 3, S, S] input (``default`` when dynamic)."""
    try:
        import onnx

        dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        return int(dims[2].dim_value) or default
    except Exception:  # noqa: BLE001 - unreadable shape: the usual YOLOv5 export size
        return default


class YoloV5Detector:
    """Run a YOLOv5 ONNX export on BGR frames.

    Args:
        model_path: the ``.onnx`` file.
        names_path: optional class names file (overrides the model's metadata).
        conf_threshold, iou_threshold: as in :func:`decode_predictions`; the threshold may be changed live.
        classes: class names to keep (None or empty = all).
        backend: "auto" (ONNX Runtime, else OpenCV DNN), "onnxruntime" or "opencv".
    """

    def __init__(self, model_path: str | Path, names_path: str | Path | None = None, conf_threshold: float = 0.25,
                 iou_threshold: float = 0.45, classes: Sequence[str] | None = None, backend: str = "auto") -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise DetectorError(f"detector model not found: {self.model_path}")
        self.conf_threshold, self.iou_threshold = float(conf_threshold), float(iou_threshold)
        metadata_names = None
        self._session = self._net = None
        if backend in ("auto", "onnxruntime"):
            try:
                self._open_onnxruntime()
                meta = self._session.get_modelmeta().custom_metadata_map
                metadata_names = names_from_metadata(meta["names"]) if "names" in meta else None
            except ImportError:
                if backend == "onnxruntime":
                    raise DetectorError("onnxruntime is not installed; pip install onnxruntime") from None
            except Exception as exc:  # noqa: BLE001 - any runtime failure: report it, maybe fall back
                if backend == "onnxruntime":
                    raise DetectorError(f"cannot load detector {self.model_path} with ONNX Runtime: {exc}") from None
                log.warning("ONNX Runtime failed on %s (%s); falling back to OpenCV DNN", self.model_path, exc)
                self._session = None
        if self._session is None:
            try:
                self._net = cv2.dnn.readNetFromONNX(str(self.model_path))
            except cv2.error as exc:
                raise DetectorError(f"cannot load detector {self.model_path}: {exc}") from None
            self.input_size = _onnx_input_size(self.model_path)
        self.backend = "onnxruntime" if self._session is not None else "opencv"
        self.names = read_names_file(names_path) if names_path else (metadata_names or list(COCO_NAMES))
        self.set_classes(classes)

    def _open_onnxruntime(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2  # the fusion runs beside it; do not take every core
        self._session = ort.InferenceSession(str(self.model_path), opts, providers=ort.get_available_providers())
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        shape = inp.shape
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise DetectorError(f"detector input has shape {shape}; expected [1, 3, S, S]")
        self.input_size = int(shape[2]) if isinstance(shape[2], int) else 640

    def set_classes(self, classes: Sequence[str] | None) -> None:
        """Keep only these class names (None or empty = all). Unknown names are an error naming them."""
        if not classes:
            self.allowed_class_ids = None
            return
        unknown = [c for c in classes if c not in self.names]
        if unknown:
            raise DetectorError(f"detector classes not in the model's names: {', '.join(unknown)}")
        self.allowed_class_ids = [self.names.index(c) for c in classes]

    def preprocess(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """(H, W, 3) BGR uint8 -> (1, 3, S, S) float32 RGB in [0, 1] and the letterbox transform."""
        if frame_bgr.ndim == 2:
            frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
        boxed, lb = letterbox(frame_bgr, self.input_size)
        blob = boxed[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        return np.ascontiguousarray(blob), lb

    def infer(self, blob: np.ndarray) -> np.ndarray:
        if self._session is not None:
            return self._session.run(None, {self._input_name: blob})[0]
        self._net.setInput(blob)
        return self._net.forward()

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Detections on one frame, in its pixel coordinates, best first."""
        blob, lb = self.preprocess(frame_bgr)
        pred = self.infer(blob)
        boxes, scores, class_ids = decode_predictions(pred, self.conf_threshold, self.iou_threshold,
                                                      self.allowed_class_ids)
        boxes = undo_letterbox(boxes, lb, frame_bgr.shape)
        return [
            Detection(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(s), int(c), self.label(int(c)))
            for b, s, c in zip(boxes, scores, class_ids)
        ]

    def label(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else f"class {class_id}"

    def close(self) -> None:
        self._session = self._net = None
