"""The evaluation command: reports over real TNO pairs, and problems reported without stopping the run."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from engine.evaluate import evaluate, main, markdown_table
from engine.metrics import METRIC_NAMES
from engine.metrics.__main__ import main as metrics_main


def _write_pair_folder(root, rng, names=("a", "b"), size=(48, 64)):
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        base = cv2.GaussianBlur(rng.uniform(0, 255, size), (0, 0), 2.0)
        cv2.imwrite(str(root / "ir" / f"{name}.png"), np.clip(base * 2 - 128, 0, 255).astype(np.uint8))
        cv2.imwrite(str(root / "vi" / f"{name}.png"), np.clip(255 - base, 0, 255).astype(np.uint8))
    return root


@pytest.mark.data
def test_reports_on_real_tno_pairs(tno_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(["--data", str(tno_dir), "--methods", "average,gff,no_such_method", "--out", str(out),
               "--limit", "2", "--save-fused", "--montage-pairs", "2"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "method no_such_method unavailable" in captured.err  # reported, the others carried on

    table = (out / "table.md").read_text()
    assert table.splitlines()[0].startswith("| Method | n | EN")
    assert "| average | 2 |" in table and "| gff | 2 |" in table
    assert table.count("**") == 2 * len(METRIC_NAMES)  # exactly one bold best per metric
    assert "Nabf ↓" in table

    with open(out / "per_image.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {r["method"] for r in rows} == {"average", "gff"}
    assert list(rows[0])[2:14] == list(METRIC_NAMES)
    gff_en = np.mean([float(r["EN"]) for r in rows if r["method"] == "gff"])
    avg_en = np.mean([float(r["EN"]) for r in rows if r["method"] == "average"])
    assert gff_en > avg_en  # averaging flattens the histogram's spread; GFF keeps both sources' contrast

    for png in ("metrics_chart.png", "montage.png"):
        image = cv2.imread(str(out / png))
        assert image is not None and (out / png).stat().st_size < 1_000_000
    montage = cv2.imread(str(out / "montage.png"))
    assert montage.shape[1] > montage.shape[0]  # 2 rows of IR | VIS | 2 methods
    assert sorted(p.name for p in (out / "fused" / "gff").iterdir()) == ["01.png", "02.png"]

    # the table's numbers are what the metrics command gives for the saved fused image
    capsys.readouterr()
    assert metrics_main([str(tno_dir / "ir" / "02.png"), str(tno_dir / "vi" / "02.png"),
                         str(out / "fused" / "gff" / "02.png")]) == 0
    cli = json.loads(capsys.readouterr().out)
    row = next(r for r in rows if r["method"] == "gff" and r["image"] == "02")
    for name in METRIC_NAMES:
        assert float(row[name]) == pytest.approx(cli[name], abs=1e-4)


def test_unreadable_and_mismatched_files_are_reported_and_skipped(tmp_path, rng, capsys):
    data = _write_pair_folder(tmp_path / "data", rng)
    (data / "ir" / "broken.png").write_bytes(b"this is not an image")
    cv2.imwrite(str(data / "vi" / "broken.png"), np.zeros((48, 64), np.uint8))
    cv2.imwrite(str(data / "ir" / "odd.png"), np.zeros((48, 64), np.uint8))
    cv2.imwrite(str(data / "vi" / "odd.png"), np.zeros((40, 64), np.uint8))
    cv2.imwrite(str(data / "ir" / "lonely.png"), np.zeros((48, 64), np.uint8))

    result = evaluate(data, ["average", "max"])
    assert result.pairs == ["a", "b"] and result.evaluated == 4
    problems = "\n".join(result.problems)
    assert "broken" in problems and "cannot read" in problems
    assert "odd" in problems and "64x48" in problems
    assert "no visible image matches lonely.png" in problems

    out = tmp_path / "out"
    assert main(["--data", str(data), "--methods", "average", "--out", str(out)]) == 0
    assert "broken" in capsys.readouterr().err
    assert (out / "table.md").is_file()


def test_max_beats_average_on_its_own_terms(tmp_path, rng):
    data = _write_pair_folder(tmp_path / "data", rng)
    result = evaluate(data, ["average", "max"])
    table = markdown_table(result)
    assert list(result.scores) == ["average", "max"]
    # averaging two anti-correlated sources flattens them: max keeps more contrast (SD)
    sd = {m: np.mean([s["SD"] for s in result.scores[m]]) for m in result.methods}
    assert sd["max"] > sd["average"]
    assert f"**{sd['max']:.3f}" in table


def test_nothing_evaluated_exits_non_zero(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "ir").mkdir(parents=True)
    (data / "vi").mkdir()
    (data / "ir" / "x.png").write_bytes(b"junk")
    (data / "vi" / "x.png").write_bytes(b"junk")
    assert main(["--data", str(data), "--methods", "average", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "nothing could be evaluated" in err and "Traceback" not in err


def test_missing_folders_are_a_clear_error(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "--methods", "average", "--out", str(tmp_path / "o")]) == 2
    assert "must contain 'ir' and 'vi'" in capsys.readouterr().err


def test_network_with_a_weights_file_and_pairwise_reference(tmp_path, rng, capsys):
    """NAME@WEIGHTS evaluates a network with another weights file; --reference writes the pairwise table."""
    import torch

    from engine.m2pn import M2PN, M2PNConfig, save_weights
    from engine.pairwise import PAIRWISE_METRICS

    torch.manual_seed(0)
    weights = save_weights(M2PN(M2PNConfig(stem_channels=4, dense_growth=4, residual_channels=4,
                                           decoder_channels=(8, 8, 4), prompt_dim=16, memory_slots=8)),
                           tmp_path / "tiny.pt")
    data = _write_pair_folder(tmp_path / "pairs", rng)
    reference = tmp_path / "peers.csv"
    reference.write_text("method," + ",".join(PAIRWISE_METRICS) + "\npeer," + ",".join(["0"] * 9) + "\n")
    spec = f"m2pn@{weights}"
    rc = main(["--data", str(data), "--methods", f"average,{spec}", "--out", str(tmp_path / "out"),
               "--reference", str(reference), "--candidates", spec])
    assert rc == 0
    table = (tmp_path / "out" / "pairwise.md").read_text()
    assert f"| {spec} |" in table and "peer" in table.splitlines()[0]
    assert "**9/9**" in table            # every metric above an all-zero peer
    assert (tmp_path / "out" / "pairwise.png").is_file()
