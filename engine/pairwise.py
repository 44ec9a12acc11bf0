"""Pairwise comparison of fusion methods: on how many of the nine standard metrics is A higher than B?

The field compares fusion methods on EN, SD, SF, AG, MI, SCD, VIF, Qabf and SSIM (all higher-is-better).
A single "wins" count per opponent says more than a wall of means: ``beats(a, b) = #{m : mean_a[m] > mean_b[m]}``.

Opponents come from two places: methods evaluated in the same run, and published figures read from a
reference CSV (``method,EN,SD,...``, one row per network, e.g. ``../shared/data/reference/tno_peers.csv``),
which can only be opponents since their images are not here.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .errors import FusionError

#: the nine metrics of the field's common comparison, all higher-is-better
PAIRWISE_METRICS = ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM")
#: a candidate "earns its place" against an opponent when it is higher on at least this many
DEFAULT_GOAL = 6

Means = dict[str, dict[str, float]]  # method -> metric -> mean


def read_reference_csv(path: str | Path) -> Means:
    """Rows of published figures: ``method`` column plus the nine metric columns (extra columns ignored).

    Raises :class:`FusionError` naming the file and the problem (missing, no method column, missing metric,
    a value that is not a number).
    """
    path = Path(path)
    if not path.is_file():
        raise FusionError(f"reference CSV {path} does not exist")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if "method" not in columns:
            raise FusionError(f"reference CSV {path} has no 'method' column (columns: {', '.join(columns)})")
        missing = [m for m in PAIRWISE_METRICS if m not in columns]
        if missing:
            raise FusionError(f"reference CSV {path} lacks metric column(s) {', '.join(missing)}")
        table: Means = {}
        for line, row in enumerate(reader, start=2):
            try:
                table[row["method"].strip()] = {m: float(row[m]) for m in PAIRWISE_METRICS}
            except (TypeError, ValueError) as exc:
                raise FusionError(f"reference CSV {path}, line {line}: not a number ({exc})") from None
    if not table:
        raise FusionError(f"reference CSV {path} has no rows")
    return table


def wins(candidate: dict[str, float], opponent: dict[str, float]) -> int:
    """How many of the nine metrics the candidate's mean is strictly higher on (NaN never wins)."""
    return sum(1 for m in PAIRWISE_METRICS
               if math.isfinite(candidate.get(m, math.nan)) and candidate[m] > opponent.get(m, math.inf))


def wins_matrix(candidates: Means, opponents: Means) -> dict[str, dict[str, int]]:
    """candidate -> opponent -> wins (a method is not compared with itself)."""
    return {c: {o: wins(cv, ov) for o, ov in opponents.items() if o != c} for c, cv in candidates.items()}


def pairwise_markdown(candidates: Means, opponents: Means, goal: int = DEFAULT_GOAL) -> str:
    """One row per candidate: wins against each opponent ("k/9", bold when >= goal), and how many it meets."""
    matrix = wins_matrix(candidates, opponents)
    names = list(opponents)
    header = ["method"] + names + [f">= {goal}/9 against"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cand, row in matrix.items():
        cells = [cand]
        for o in names:
            if o not in row:
                cells.append("—")
                continue
            text = f"{row[o]}/9"
            cells.append(f"**{text}**" if row[o] >= goal else text)
        met = sum(1 for v in row.values() if v >= goal)
        cells.append(f"{met}/{len(row)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_pairwise_chart(candidates: Means, opponents: Means, path: str | Path, goal: int = DEFAULT_GOAL) -> None:
    """Heat map of wins (rows: candidates, columns: opponents), cells at or above the goal outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = wins_matrix(candidates, opponents)
    rows, cols = list(matrix), list(opponents)
    grid = np.array([[matrix[r].get(c, np.nan) for c in cols] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(cols) + 2), max(2.2, 0.45 * len(rows) + 1.4)))
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=9, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{int(grid[i, j])}", ha="center", va="center", fontsize=8,
                        fontweight="bold" if grid[i, j] >= goal else "normal")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(f"metrics (of 9) on which the row is higher than the column; goal >= {goal}", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
