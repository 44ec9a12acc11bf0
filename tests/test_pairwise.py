"""The pairwise "higher on k of 9 metrics" comparison and its reference CSV reader."""

from pathlib import Path

import pytest

from engine.errors import FusionError
from engine.pairwise import PAIRWISE_METRICS, pairwise_markdown, read_reference_csv, wins, wins_matrix

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "reference" / "tno_peers.csv"


def _row(value: float, **overrides: float) -> dict[str, float]:
    row = {m: value for m in PAIRWISE_METRICS}
    row.update(overrides)
    return row


def test_wins_counts_strictly_higher_metrics():
    a = _row(1.0, EN=2.0, SD=2.0, SF=0.5)
    b = _row(1.0)
    assert wins(a, b) == 2          # EN and SD higher; SF lower; ties never count
    assert wins(b, a) == 1          # only SF
    assert wins(_row(float("nan")), b) == 0


def test_matrix_skips_self_and_markdown_marks_goal():
    cands = {"ours": _row(2.0, MI=0.0)}
    opponents = {"ours": _row(0.0), "peer": _row(1.0), "strong": _row(3.0)}
    matrix = wins_matrix(cands, opponents)
    assert matrix == {"ours": {"peer": 8, "strong": 0}}
    table = pairwise_markdown(cands, opponents, goal=6)
    assert "| ours | — | **8/9** | 0/9 | 1/2 |" in table


def test_reference_csv_errors_name_the_problem(tmp_path):
    with pytest.raises(FusionError, match="does not exist"):
        read_reference_csv(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("method,EN\nx,1\n")
    with pytest.raises(FusionError, match="lacks metric"):
        read_reference_csv(bad)
    bad.write_text("method," + ",".join(PAIRWISE_METRICS) + "\nx," + ",".join(["1"] * 8 + ["oops"]) + "\n")
    with pytest.raises(FusionError, match="line 2"):
        read_reference_csv(bad)


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"published reference figures not found at {REFERENCE}")
def test_reads_the_published_tno_reference():
    table = read_reference_csv(REFERENCE)
    assert len(table) == 15 and "SeAFusion" in table
    assert table["SeAFusion"]["Qabf"] == pytest.approx(0.507)
