"""EGMT entity extraction: the real YOLOv5n on a real pair (both images, union, case-insensitive), the
user-list route, crop entities, the cache, and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from engine.egmt.data import crop_entities, multi_hot
from engine.egmt.entities import extract, load_pair_entities, statistics
from engine.egmt.entity_table import dedupe, normalise_name
from engine.paths import REPO_ROOT

YOLO = REPO_ROOT.parent / "shared" / "models" / "yolov5n" / "yolov5n.onnx"
ROADSCENE_PAIR = "FLIR_00006.jpg"


@pytest.fixture
def one_roadscene_pair(shared_data, tmp_path):
    src = shared_data / "roadscene"
    if not (src / "ir" / ROADSCENE_PAIR).is_file():
        pytest.skip(f"RoadScene pair {ROADSCENE_PAIR} not found under {src}")
    for side in ("ir", "vi"):
        (tmp_path / "data" / side).mkdir(parents=True)
        shutil.copy(src / side / ROADSCENE_PAIR, tmp_path / "data" / side / ROADSCENE_PAIR)
    return tmp_path / "data"


@pytest.mark.data
def test_real_detector_on_both_images_of_a_real_pair(one_roadscene_pair, tmp_path):
    if not YOLO.is_file():
        pytest.skip(f"YOLOv5n ONNX not found at {YOLO} (../shared/models)")
    out = tmp_path / "entities.json"
    blob = extract(one_roadscene_pair, out, YOLO, 0.4, None, quiet=True)
    pair = load_pair_entities(out)[ROADSCENE_PAIR]
    assert pair.entities, "YOLOv5n finds objects on this road scene"
    # entity set = union of the confident names of BOTH images, de-duplicated without regard to case
    assert pair.entities == dedupe(b[0] for b in pair.ir + pair.vi)
    assert all(b[1] >= 0.4 for b in pair.ir + pair.vi)
    assert {"car"} <= {normalise_name(n) for n in pair.entities}
    assert blob["statistics"]["pairs"] == 1 and blob["source"]["images"] == "both (IR and VIS)"
    # the shipped pseudo-labels were made the same way
    shipped = load_pair_entities(REPO_ROOT / "engine" / "egmt" / "pseudo_labels" / "roadscene.json")[ROADSCENE_PAIR]
    assert shipped.entities == pair.entities
    # cache: a second run detects nothing new and gives the same file content
    before = out.read_text()
    extract(one_roadscene_pair, out, YOLO, 0.4, None, quiet=True)
    assert json.loads(out.read_text())["pairs"] == json.loads(before)["pairs"]


def test_user_entity_list_route(tmp_path):
    import cv2
    import numpy as np

    for side in ("ir", "vi"):
        (tmp_path / side).mkdir()
        cv2.imwrite(str(tmp_path / side / "a.png"), np.zeros((8, 8), np.uint8))
    extract(tmp_path, tmp_path / "e.json", None, 0.4, ["Person", "car", "person"], quiet=True)
    assert load_pair_entities(tmp_path / "e.json")["a.png"].entities == ["Person", "car"]


def test_crop_entities_need_half_the_box_inside():
    boxes = [["person", 0.9, 10, 10, 30, 50], ["car", 0.8, 100, 100, 140, 120], ["Person", 0.7, 0, 0, 5, 5]]
    assert crop_entities(boxes, 0, 0, 64) == ["person"]          # car outside; Person merged with person
    assert crop_entities(boxes, 60, 90, 64) == ["car"]           # car box fully inside rows 60-124, cols 90-154
    assert crop_entities(boxes, 0, 20, 64) == ["person"]         # person half inside (cols 20-30 of 10-30)
    assert multi_hot(["Car"], ["person", "car"]).tolist() == [0.0, 1.0]


def test_statistics_count_pairs_per_entity():
    from engine.egmt.entities import PairEntities

    pairs = {"a": PairEntities(["person", "car"], [["person", 0.9, 0, 0, 1, 1]], [["car", 0.9, 0, 0, 1, 1]], (2, 2)),
             "b": PairEntities(["person"], [], [["person", 0.5, 0, 0, 1, 1]], (2, 2)),
             "c": PairEntities([], [], [], (2, 2))}
    s = statistics(pairs)
    assert s["pairs_per_entity"] == {"person": 2, "car": 1}
    assert s["found_only_in_ir"]["person"] == 1 and s["found_only_in_vi"]["car"] == 1
    assert s["pairs_without_entities"] == 1


def test_cli_missing_folder_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "engine.egmt.entities", "--data", str(tmp_path / "nope"),
                           "--out", str(tmp_path / "e.json")], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "must contain 'ir' and 'vi'" in proc.stderr
