"""YOLOv5 decoding (letterbox, threshold, class-aware NMS, class filter, names) and the ONNX path,
on hand-made predictions and a tiny ONNX model with YOLOv5's output layout."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.annotate import draw_detections
from app.detector import (
    COCO_NAMES, Detection, DetectorError, Letterbox, YoloV5Detector, class_aware_nms, decode_predictions,
    letterbox, names_from_metadata, nms, undo_letterbox,
)

NUM_CLASSES = 3


def row(cx, cy, w, h, obj, cls_scores):
    return [cx, cy, w, h, obj, *cls_scores]


def build_yolo_like_onnx(path, predictions: np.ndarray, size: int = 64, names=None) -> None:
    """An ONNX model with YOLOv5's interface: images [1,3,S,S] -> output [1,N,5+C].

    The output is ``predictions + 0 * mean(images)``: it depends on the input tensor (so the runtime really
    feeds it) but returns known rows, which is what a decoding test needs.
    """
    pred = numpy_helper.from_array(predictions.astype(np.float32)[None], name="pred")
    zero = numpy_helper.from_array(np.zeros((1,), np.float32), name="zero")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["pred", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, predictions.shape[0], predictions.shape[1]])],
        initializer=[pred, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if names is not None:
        meta = model.metadata_props.add()
        meta.key, meta.value = "names", repr(dict(enumerate(names)))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_letterbox_then_undo_recovers_frame_boxes():
    frame = np.zeros((240, 320, 3), np.uint8)
    boxed, lb = letterbox(frame, 64)
    assert boxed.shape == (64, 64, 3)
    assert lb.scale == pytest.approx(0.2) and lb.pad_x == 0 and lb.pad_y == 8
    assert (boxed[:8] == 114).all() and (boxed[-8:] == 114).all()  # gray bars above and below
    frame_box = np.array([[50.0, 40.0, 150.0, 200.0]])
    model_box = frame_box * lb.scale + [lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y]
    assert np.allclose(undo_letterbox(model_box, lb, frame.shape), frame_box, atol=1e-4)


def test_undo_letterbox_clips_to_the_frame():
    out = undo_letterbox(np.array([[-5.0, 0.0, 70.0, 70.0]]), Letterbox(0.2, 0.0, 8.0), (240, 320))
    assert out.tolist() == [[0.0, 0.0, 320.0, 240.0]]


def test_threshold_uses_objectness_times_class_score():
    pred = np.array([
        row(10, 10, 4, 4, 0.9, [0.9, 0.0, 0.0]),   # 0.81: kept
        row(40, 40, 4, 4, 0.5, [0.0, 0.4, 0.0]),   # 0.20: below 0.25
        row(30, 10, 4, 4, 0.3, [0.0, 0.0, 0.95]),  # 0.285: kept
    ], np.float32)
    boxes, scores, classes = decode_predictions(pred, 0.25, 0.45)
    assert classes.tolist() == [0, 2]
    assert scores == pytest.approx([0.81, 0.285])
    assert boxes[0].tolist() == [8, 8, 12, 12]  # cx, cy, w, h -> corners


def test_nms_suppresses_overlaps_of_one_class_but_not_across_classes():
    pred = np.array([
        row(20, 20, 10, 10, 0.9, [1.0, 0, 0]),
        row(21, 20, 10, 10, 0.8, [1.0, 0, 0]),   # IoU ~0.8 with the first, same class: suppressed
        row(21, 21, 10, 10, 0.7, [0, 1.0, 0]),   # same place, other class: kept
        row(50, 50, 10, 10, 0.6, [1.0, 0, 0]),   # far away, same class: kept
    ], np.float32)
    _, scores, classes = decode_predictions(pred[None], 0.25, 0.45)
    assert scores == pytest.approx([0.9, 0.7, 0.6])
    assert classes.tolist() == [0, 1, 0]


def test_class_filter_keeps_only_allowed_classes():
    pred = np.array([row(20, 20, 10, 10, 0.9, [0.9, 0.8, 0]), row(50, 50, 10, 10, 0.9, [0, 0, 0.9])], np.float32)
    _, _, classes = decode_predictions(pred, 0.25, 0.45, allowed_classes=[1])
    # The first row's best class is 0, but with the filter its class-1 score (0.72) counts.
    assert classes.tolist() == [1]


def test_own_nms_matches_opencv(rng):
    xy = rng.uniform(0, 200, (60, 2))
    wh = rng.uniform(10, 60, (60, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.uniform(0.3, 1.0, 60).astype(np.float32)
    ours = nms(boxes, scores, 0.45)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    ref = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, 0.45)
    assert sorted(ours.tolist()) == sorted(np.array(ref).ravel().tolist())


def test_class_aware_nms_with_negative_coordinates_keeps_classes_apart():
    boxes = np.array([[-50, -50, -10, -10], [-50, -50, -10, -10]], np.float32)
    keep = class_aware_nms(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 1]), 0.45)
    assert sorted(keep.tolist()) == [0, 1]


def test_malformed_output_is_a_clear_error():
    with pytest.raises(DetectorError, match="YOLOv5 layout"):
        decode_predictions(np.zeros((1, 10, 4), np.float32), 0.25, 0.45)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    # Two people (one duplicate) and a car, in 64x64 model pixels; a 320x240 frame maps with scale 0.2, pad_y 8.
    pred = np.array([
        row(20, 28, 8, 16, 0.95, [0.9, 0.0, 0.0]),
        row(20.5, 28, 8, 16, 0.90, [0.9, 0.0, 0.0]),
        row(44, 40, 12, 8, 0.80, [0.0, 0.0, 0.9]),
        row(10, 50, 4, 4, 0.10, [0.9, 0.0, 0.0]),
    ], np.float32)
    path = tmp_path_factory.mktemp("det") / "tiny_yolo.onnx"
    build_yolo_like_onnx(path, pred, names=["person", "bicycle", "car"])
    return path


@pytest.mark.parametrize("backend", ["onnxruntime", "opencv"])
def test_detector_runs_the_onnx_model_and_maps_boxes_to_the_frame(tiny_model, backend):
    det = YoloV5Detector(tiny_model, conf_threshold=0.25, iou_threshold=0.45, backend=backend)
    assert det.backend == backend and det.input_size == 64
    frame = np.full((240, 320, 3), 40, np.uint8)
    found = det.detect(frame)
    assert [d.class_id for d in found] == [0, 2]
    if backend == "onnxruntime":
        assert [d.label for d in found] == ["person", "car"]  # names from the model's metadata
    person = found[0]
    # model box (16, 20)-(24, 36) -> frame ((x - 0) / 0.2, (y - 8) / 0.2)
    assert person.xyxy == pytest.approx((80.0, 60.0, 120.0, 140.0), abs=1e-3)
    assert person.score == pytest.approx(0.95 * 0.9, rel=1e-5)


def test_detector_class_filter_threshold_and_names_file(tiny_model, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("pedestrian\ncyclist\nvehicle\n")
    det = YoloV5Detector(tiny_model, names_path=names, classes=["vehicle"])
    found = det.detect(np.zeros((240, 320, 3), np.uint8))
    assert [d.label for d in found] == ["vehicle"]
    det.set_classes(None)
    det.conf_threshold = 0.8
    assert [d.label for d in det.detect(np.zeros((240, 320, 3), np.uint8))] == ["pedestrian"]
    with pytest.raises(DetectorError, match="dog"):
        det.set_classes(["dog"])


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(DetectorError, match="not found"):
        YoloV5Detector(tmp_path / "nope.onnx")


def test_names_metadata_parsing_and_coco_default():
    assert names_from_metadata("{0: 'person', 1: 'car'}") == ["person", "car"]
    assert names_from_metadata("not a literal(") is None
    assert len(COCO_NAMES) == 80 and COCO_NAMES[0] == "person"


def test_annotator_draws_boxes_without_touching_the_input():
    frame = np.zeros((120, 160, 3), np.uint8)
    dets = [Detection(20, 30, 60, 90, 0.87, 0, "person")]
    out = draw_detections(frame, dets)
    assert frame.sum() == 0  # copy by default
    assert out[60, 20].any() and out[60, 60].any()  # left and right edges drawn
    assert not out[60, 40].any()  # the inside stays clear
    assert out[:30, 20:80].any()  # the label tag above the box
