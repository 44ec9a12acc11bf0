"""The ``egmt`` / ``egmt_rt`` fusion methods: registration, entity selection (detector, configured list,
all known) with its status line, the shipped weights (load, sidecar, beat ``average`` on Qabf and SD on
real TNO pairs), and the application pipeline feeding detector names to the method."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine import available_methods
from engine.egmt.config import EGMTConfig
from engine.egmt.entity_table import EntityTable
from engine.egmt.method import EGMTMethod, EGMTRealtimeMethod
from engine.egmt.model import EGMT
from engine.egmt.weights import DEFAULT_WEIGHTS, load_model
from engine.errors import FusionInputError, WeightsError
from engine.paths import REPO_ROOT

YOLO = REPO_ROOT.parent / "shared" / "models" / "yolov5n" / "yolov5n.onnx"
CLASSES = ["person", "car", "bicycle"]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = EGMT(EGMTConfig(channels=8, patch_size=8, token_dim=16, channel_heads=2, token_heads=2, cgha_heads=2,
                            entity_dim=6, num_classes=3, recon_channels=(8, 4)))
    table = EntityTable(["person", "car", "bicycle", "dog"], np.random.default_rng(0).normal(size=(4, 6)))
    return model, table


def test_registered():
    methods = available_methods()
    assert "egmt" in methods and "egmt_rt" in methods
    assert "entity" in methods["egmt"].lower()


def test_entity_sources_and_status(tiny):
    model, table = tiny
    m = EGMTMethod(model=model, classes=CLASSES, entity_table=table)
    assert m.entity_status == "EGMT entities from all known: person, car, bicycle"
    assert m.set_entities(["Dog", "person", "unknown-thing"]) == "EGMT entities from detector: Dog, person"
    assert m.set_entities(["person", "dog"]) is None               # same set: no new status line
    assert m.set_entities([]) == "EGMT entities from detector: none"
    assert m.set_entities(None) == "EGMT entities from all known: person, car, bicycle"   # detection off
    configured = EGMTMethod(model=model, classes=CLASSES, entity_table=table, entities="car, dog")
    assert configured.entity_status == "EGMT entities from configured list: car, dog"
    with pytest.raises(FusionInputError, match="not in the text-feature table: zebra"):
        EGMTMethod(model=model, classes=CLASSES, entity_table=table, entities=["zebra"])


def test_fuse_shapes_padding_and_entities_matter(tiny, rng):
    model, table = tiny
    with torch.no_grad():
        for branch in (model.branch_ir, model.branch_vi):
            torch.nn.init.normal_(branch.patches.unembed.weight, std=0.2)
    m = EGMTMethod(model=model, classes=CLASSES, entity_table=table)
    ir, vi = rng.random((37, 29), dtype=np.float32), rng.random((37, 29), dtype=np.float32)
    out = m.fuse(ir, vi)
    assert out.shape == (37, 29) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    m.set_entities(["dog"])
    assert not np.allclose(out, m.fuse(ir, vi))
    rt = EGMTRealtimeMethod(model=model, classes=CLASSES, entity_table=table)
    assert rt.fuse(rng.random((240, 320), dtype=np.float32), rng.random((240, 320), dtype=np.float32)).shape == (240, 320)
    with pytest.raises(FusionInputError):
        m.fuse_batch(ir[None], vi[None, :10])


def test_missing_and_garbage_weights_name_the_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torch")
    with pytest.raises(WeightsError, match="bad.pt"):
        load_model(bad)


def test_shipped_weights_and_sidecar():
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"{DEFAULT_WEIGHTS} not built yet (python -m engine.egmt.train --config configs/train_egmt_cpu.yaml)")
    model, classes, meta, table = load_model()
    assert classes and "person" in classes and model.config.num_classes == len(classes)
    assert table is not None and "person" in table and table.dim == model.config.entity_dim
    side = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())
    for key in ("config", "command", "steps", "data_fingerprint", "train_time_s", "hardware", "classes"):
        assert key in side, key
    assert side["steps"] >= 1000  # the committed run stopped at 1,250 of 1,500 planned steps (model card)


@pytest.mark.data
@pytest.mark.slow
def test_shipped_weights_beat_average_on_real_pairs(tno_dir):
    """On three TNO pairs (never seen in training) egmt keeps more contrast (SD) and edges (Qabf) than averaging."""
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"{DEFAULT_WEIGHTS} not built yet")
    from engine import FusionEngine
    from engine.evaluate import fused_gray_levels
    from engine.imageio import match_pairs, read_image
    from engine.metrics import load_gray, qabf, standard_deviation

    pairs = match_pairs(tno_dir / "ir", tno_dir / "vi").pairs[:3]
    egmt, average = FusionEngine("egmt"), FusionEngine("average")
    for ir_p, vi_p in pairs:
        ir, vi = load_gray(ir_p), load_gray(vi_p)
        scores = {}
        for name, engine in (("egmt", egmt), ("average", average)):
            f = fused_gray_levels(engine.fuse(read_image(ir_p), read_image(vi_p)))   # as engine.evaluate scores it
            scores[name] = (qabf(ir, vi, f), standard_deviation(f))
        assert scores["egmt"][0] > scores["average"][0], (ir_p.name, scores)
        assert scores["egmt"][1] > scores["average"][1], (ir_p.name, scores)


@pytest.mark.data
@pytest.mark.slow
def test_pipeline_feeds_detector_names_to_egmt(shared_data):
    """The application's pipeline with the real YOLOv5n on the demo street: EGMT's entities come from it."""
    if not YOLO.is_file() or not DEFAULT_WEIGHTS.is_file():
        pytest.skip("needs ../shared/models/yolov5n and engine/weights/egmt.pt")
    from app.demo import open_demo_pair
    from app.detector import YoloV5Detector
    from app.pipeline import FusionPipeline, PipelineOptions

    ir, rgb = open_demo_pair(640, 480, frames=6, realtime=False)
    pipeline = FusionPipeline.from_sources(
        ir, rgb, PipelineOptions(method="egmt_rt", detector_async=False, fallbacks=()), lockstep=True,
        detector=YoloV5Detector(YOLO, conf_threshold=0.25))
    pipeline.run(max_frames=6)
    messages = pipeline.status_messages
    assert any(m.startswith("fusion method: egmt_rt on cpu") and "EGMT entities from all known" in m
               for m in messages), messages
    assert any(m.startswith("EGMT entities from detector:") for m in messages), messages


def test_pipeline_configured_entities_without_detector():
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"{DEFAULT_WEIGHTS} not built yet")
    from app.demo import open_demo_pair
    from app.pipeline import FusionPipeline, PipelineOptions

    ir, rgb = open_demo_pair(320, 240, frames=2, realtime=False)
    pipeline = FusionPipeline.from_sources(
        ir, rgb, PipelineOptions(method="egmt_rt", fallbacks=(), entities=("person",)), lockstep=True)
    pipeline.run(max_frames=2)
    assert any("EGMT entities from configured list: person" in m for m in pipeline.status_messages)
