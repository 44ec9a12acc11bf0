"""`python -m engine.fuse` end to end in a subprocess, on real TNO pairs (skips without the data)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.imageio import read_image
from engine.m2pn import M2PN, M2PNConfig, save_weights
from engine.paths import REPO_ROOT

PAIR_NAMES = ("01.png", "02.png", "03.png")
TINY = M2PNConfig(
    stem_channels=4, dense_growth=4, dense_layers=2, residual_channels=4, decoder_channels=(8, 8, 4),
    prompt_dim=16, graph_heads=2, mgf_heads=2, memory_slots=8,
)


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "engine.fuse", *map(str, args)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def tno_subset(tno_dir, tmp_path_factory):
    """3 TNO pairs copied into tmp ir/ and vi/ folders, plus a thermal image with no visible partner."""
    root = tmp_path_factory.mktemp("tno3")
    for side in ("ir", "vi"):
        (root / side).mkdir()
        for name in PAIR_NAMES:
            shutil.copy(tno_dir / side / name, root / side / name)
    shutil.copy(tno_dir / "ir" / "04.png", root / "ir" / "lonely_thermal.png")
    return root


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    return save_weights(M2PN(TINY), tmp_path_factory.mktemp("w") / "tiny.pt")


def check_outputs(root: Path, out: Path) -> None:
    produced = sorted(p.name for p in out.iterdir())
    assert produced == sorted(PAIR_NAMES)  # names kept, the unmatched file produced nothing
    for name in PAIR_NAMES:
        source = read_image(root / "vi" / name)
        fused = read_image(out / name)
        assert fused.shape[:2] == source.shape[:2]


def test_fuse_m2pn_with_weights_option(tno_subset, tiny_weights, tmp_path):
    out = tmp_path / "fused_m2pn"
    result = run_cli("--ir", tno_subset / "ir", "--vi", tno_subset / "vi", "--out", out,
                     "--method", "m2pn", "--weights", tiny_weights, "--option", "threads=1")
    assert result.returncode == 0, result.stderr
    assert "lonely_thermal.png" in result.stderr  # the unmatched name is reported
    assert "fused 3 of 3 pairs" in result.stdout
    check_outputs(tno_subset, out)


def test_fuse_classical_method(tno_subset, tmp_path):
    out = tmp_path / "fused_average"
    result = run_cli("--ir", tno_subset / "ir", "--vi", tno_subset / "vi", "--out", out, "--method", "average")
    assert result.returncode == 0, result.stderr
    assert "lonely_thermal.png" in result.stderr
    check_outputs(tno_subset, out)
    # "average" of IR and VIS luminance lies between the two sources at every pixel
    ir = read_image(tno_subset / "ir" / "01.png").astype(int)[..., 0]
    vi = read_image(tno_subset / "vi" / "01.png").astype(int)[..., 0]
    fused = read_image(out / "01.png").astype(int)
    fused = fused[..., 0] if fused.ndim == 3 else fused
    assert ((fused >= (ir.clip(max=vi) - 1)) & (fused <= (ir.clip(min=vi) + 1))).mean() > 0.99


def test_missing_input_path_is_a_clear_error(tmp_path):
    result = run_cli("--ir", tmp_path / "no_such_dir", "--vi", tmp_path, "--out", tmp_path / "o", "--method", "average")
    assert result.returncode != 0
    assert "no_such_dir" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_weights_is_a_clear_error(tno_subset, tmp_path):
    result = run_cli("--ir", tno_subset / "ir", "--vi", tno_subset / "vi", "--out", tmp_path / "o",
                     "--method", "m2pn", "--weights", tmp_path / "absent.pt")
    assert result.returncode != 0
    assert "absent.pt" in result.stderr and "Traceback" not in result.stderr


def test_bad_option_is_a_clear_error(tno_subset, tmp_path):
    result = run_cli("--ir", tno_subset / "ir", "--vi", tno_subset / "vi", "--out", tmp_path / "o",
                     "--method", "average", "--option", "colour=blue")
    assert result.returncode != 0
    assert "colour" in result.stderr and "Traceback" not in result.stderr


def test_list_methods_needs_no_paths():
    result = run_cli("--list-methods")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert "m2pn" in names and "average" in names
