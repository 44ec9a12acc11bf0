"""The training CLI: a short run lowers the loss, resume is exact, bad configs fail clearly."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from engine.errors import FusionError
from engine.train import TrainConfig, Trainer, main

TINY_MODEL = dict(stem_channels=4, dense_growth=4, dense_layers=2, residual_channels=4, decoder_channels=[8, 8, 4],
                  prompt_dim=16, graph_heads=2, mgf_heads=2, memory_slots=8)


def write_config(tmp_path: Path, data_root: Path | None, **train) -> Path:
    cfg = {
        "data": {"root": str(data_root) if data_root else None, "patches": 48, "patch_size": 32,
                 "val_pairs": 2, "val_patches": 8},
        "model": TINY_MODEL,
        "train": {"batch_size": 8, "epochs": 4, "checkpoint_every": 3, "lr": 0.003, **train},
        "output": str(tmp_path / "run"),
        "export": str(tmp_path / "weights" / "m2pn.pt"),
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def pair_folder(tmp_path: Path, shared_data) -> Path:
    """Six real RoadScene pairs copied to tmp (the test may not write into the shared data)."""
    src = shared_data / "roadscene"
    root = tmp_path / "pairs"
    for side in ("ir", "vi"):
        (root / side).mkdir(parents=True)
    for name in sorted(p.name for p in (src / "ir").iterdir())[:6]:
        for side in ("ir", "vi"):
            (root / side / name).write_bytes((src / side / name).read_bytes())
    return root


def test_short_training_run_lowers_the_loss_and_writes_everything(tmp_path, pair_folder):
    torch.set_num_threads(1)
    config = write_config(tmp_path, pair_folder)
    assert main(["--config", str(config), "--export"]) == 0
    run = tmp_path / "run"
    for name in ("last.pt", "loss_curve.png", "memory_bank.png", "history.json"):
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    totals = [row["total"] for row in history["steps"]]
    assert len(totals) == 24  # 4 epochs x 6 steps
    assert np.mean(totals[-6:]) < 0.8 * np.mean(totals[:3])
    assert history["memory"], "the quality evaluator drove memory-bank decisions"
    sidecar = json.loads((tmp_path / "weights" / "m2pn.json").read_text())
    assert sidecar["steps"] == 24 and sidecar["quality_evaluator"] == "noref"
    assert sidecar["data_fingerprint"] == history["meta"]["data_fingerprint"]


def test_resume_continues_exactly(tmp_path, pair_folder):
    torch.set_num_threads(1)
    straight = tmp_path / "straight"
    straight.mkdir()
    cfg_a = write_config(straight, pair_folder, epochs=1)
    assert main(["--config", str(cfg_a)]) == 0
    split = tmp_path / "split"
    split.mkdir()
    cfg_b = write_config(split, pair_folder, epochs=1)
    assert main(["--config", str(cfg_b), "--max-steps", "2"]) == 0
    assert main(["--config", str(cfg_b), "--resume"]) == 0
    a = torch.load(straight / "run" / "last.pt", weights_only=False)
    b = torch.load(split / "run" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key   # weights AND memory bank identical


def test_missing_data_folder_and_bad_config_fail_clearly(tmp_path, capsys):
    config = write_config(tmp_path, tmp_path / "nowhere")
    assert main(["--config", str(config)]) == 2
    assert "nowhere" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {batch_size: 8, learning_rate: 1}\n")
    with pytest.raises(FusionError, match="train.learning_rate"):
        TrainConfig.load(bad)
    assert main(["--config", str(tmp_path / "absent.yaml")]) == 2


def test_cli_runs_as_a_module_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "engine.train", "--config", str(tmp_path / "absent.yaml")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "training config not found" in result.stderr and "Traceback" not in result.stderr


def test_several_sources_including_a_real_video_file(tmp_path, pair_folder):
    """data.sources mixes an image-pair folder and a synchronised video pair (written here with OpenCV);
    whole videos are held out, so no frame of a validation video is trained on."""
    videos = tmp_path / "videos"
    rng = np.random.default_rng(0)
    for side in ("ir", "vi"):
        (videos / side).mkdir(parents=True)
        for name in ("a.avi", "b.avi"):
            writer = cv2.VideoWriter(str(videos / side / name), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
            for _ in range(6):
                writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
            writer.release()
    config = write_config(tmp_path, None)
    raw = yaml.safe_load(config.read_text())
    raw["data"].pop("root")
    raw["data"]["sources"] = [{"path": str(pair_folder), "val": 2},
                              {"path": str(videos), "kind": "video", "val": 1, "every": 2}]
    config.write_text(yaml.safe_dump(raw))
    trainer = Trainer(TrainConfig.load(config), str(config))
    video_train = {n.split("#")[0] for n in trainer.train_names if "#" in n}
    video_val = {n.split("#")[0] for n in trainer.val_names if "#" in n}
    assert len(video_train) == 1 and len(video_val) == 1 and not video_train & video_val
    assert sum("#" in n for n in trainer.train_names) == 3          # frames 0, 2, 4 of the training video
    assert sum("#" not in n for n in trainer.train_names) == 4      # 6 pairs, 2 held out
    bad = dict(raw)
    bad["data"] = {**raw["data"], "sources": [{"path": str(videos), "kind": "film"}]}
    config.write_text(yaml.safe_dump(bad))
    with pytest.raises(Exception, match="kind must be"):
        Trainer(TrainConfig.load(config), str(config))


@pytest.mark.slow
def test_two_process_ddp_run_with_gloo(tmp_path, pair_folder):
    """torchrun with two CPU processes: the run finishes, every checkpoint passed the cross-process
    state check (weights and memory bank identical in both), and the sidecar says two processes."""
    config = write_config(tmp_path, pair_folder, epochs=1, checkpoint_every=2)
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", "29517", "-m", "engine.train", "--config", str(config), "--export"],
                            capture_output=True, text=True, timeout=400, env=env, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "diverged" not in result.stderr
    sidecar = json.loads((tmp_path / "weights" / "m2pn.json").read_text())
    assert sidecar["processes"] == 2 and sidecar["steps"] == 6
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["steps"]) == 6 and history["val"]
