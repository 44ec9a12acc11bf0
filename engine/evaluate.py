"""Score several fusion methods over a folder of image pairs with the 12 standard metrics.

    python -m engine.evaluate --data DIR --methods m2pn,gff,average --out DIR [--limit N] [--save-fused]

DIR holds ``ir/`` and ``vi/`` with images matched by name. Every pair is fused by every method through
:class:`engine.FusionEngine`; the metrics are computed on the grayscale of the fused output (colour
methods included) against the grayscale sources. Writes to OUT:

* ``table.md``          mean +- std per method and metric, the best per metric in bold (Nabf: lowest)
* ``per_image.csv``     one row per method and pair, with the fusion time
* ``metrics_chart.png`` one bar chart per metric, methods as bars with std error bars
* ``montage.png``       a few pairs side by side: IR | VIS | each method
* ``pairwise.md`` / ``pairwise.png``  with ``--reference CSV``: on how many of the nine standard metrics each
  evaluated method is higher than every other evaluated method and every published row of the CSV
* ``fused/METHOD/*.png`` the fused images, with ``--save-fused``

Unreadable images and methods that fail (e.g. missing weights) are reported and skipped; the exit status
is non-zero only when nothing at all could be evaluated.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .errors import FusionError
from .fusion_engine import FusionEngine
from .imageio import match_pairs, read_image, write_image
from .metrics import LOWER_IS_BETTER, METRIC_NAMES, as_gray_levels, compute_all, load_gray
from .pairwise import DEFAULT_GOAL, Means, pairwise_markdown, read_reference_csv, write_pairwise_chart

DEFAULT_METHODS = "average,max,laplacian,gff,tif"
MONTAGE_TILE = (240, 180)  # (width, height) of one montage cell, small enough to keep the PNG < 1 MB
LABEL_BAND = 22
MONTAGE_MAX_BYTES = 950_000  # keep montage.png under 1 MB for the docs


@dataclass
class LoadedPair:
    """One readable pair: the images to fuse and the (H, W) float64 grayscale sources for the metrics."""

    name: str
    ir: np.ndarray
    vi: np.ndarray
    ir_gray: np.ndarray
    vi_gray: np.ndarray


@dataclass
class EvaluationResult:
    """Everything one run produced; ``scores[method]`` holds one metrics dict per evaluated pair."""

    methods: list[str]
    pairs: list[str]
    scores: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    montage_images: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def evaluated(self) -> int:
        return len(self.rows)


def fused_gray_levels(fused: np.ndarray) -> np.ndarray:
    """uint8 fused image (H, W) or (H, W, 3) BGR -> (H, W) float64 gray levels, exactly as
    ``python -m engine.metrics`` would read it back from the saved PNG.

    OpenCV's PNG reader converts colour to gray with libpng's own fixed-point weights, which can differ by
    one level from ``cvtColor``; going through a (fast, uncompressed) PNG keeps the two paths identical.
    """
    if fused.ndim == 2:
        return fused.astype(np.float64)
    ok, buf = cv2.imencode(".png", fused, [cv2.IMWRITE_PNG_COMPRESSION, 0])
    if not ok:
        raise FusionError("cannot encode the fused image as PNG")
    return as_gray_levels(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE), "fused image")


def load_pairs(data: Path, limit: int | None, problems: list[str]) -> list[LoadedPair]:
    """Match and read ``data/ir`` and ``data/vi``; unreadable or unmatched files go into ``problems``."""
    ir_dir, vi_dir = data / "ir", data / "vi"
    for d in (ir_dir, vi_dir):
        if not d.is_dir():
            raise FusionError(f"{data} must contain 'ir' and 'vi' folders; {d} is missing")
    listing = match_pairs(ir_dir, vi_dir)
    problems += [f"no visible image matches {p.name}" for p in listing.ir_only]
    problems += [f"no thermal image matches {p.name}" for p in listing.vi_only]
    candidates = listing.pairs[:limit] if limit else listing.pairs
    loaded = []
    for ir_path, vi_path in candidates:
        try:
            ir, vi = read_image(ir_path), read_image(vi_path)
            ir_gray, vi_gray = load_gray(ir_path), load_gray(vi_path)
        except FusionError as exc:
            problems.append(f"skipped pair {ir_path.stem}: {exc}")
            continue
        if ir_gray.shape != vi_gray.shape:
            problems.append(f"skipped pair {ir_path.stem}: thermal is {ir_gray.shape[1]}x{ir_gray.shape[0]} but "
                            f"visible is {vi_gray.shape[1]}x{vi_gray.shape[0]}")
            continue
        loaded.append(LoadedPair(ir_path.stem, ir, vi, ir_gray, vi_gray))
    return loaded


def evaluate(data: str | Path, methods: list[str], out: str | Path | None = None, limit: int | None = None,
             save_fused: bool = False, montage_pairs: int = 3) -> EvaluationResult:
    """Fuse every readable pair under ``data`` with every method and score it; optionally save fused images.

    Returns the :class:`EvaluationResult`; reports are written by :func:`write_reports`.
    """
    problems: list[str] = []
    pairs = load_pairs(Path(data), limit, problems)
    result = EvaluationResult(methods=[], pairs=[p.name for p in pairs], problems=problems)
    montage_names = {p.name for p in pairs[:montage_pairs]}
    for p in pairs[:montage_pairs]:
        result.montage_images[p.name] = {"IR": p.ir, "VIS": p.vi}
    if not pairs:
        return result

    progress = tqdm(total=len(pairs) * len(methods), desc="evaluating", unit="fusion")
    for method in methods:
        try:
            engine = build_engine(method)
        except Exception as exc:  # any failure to build one method must not stop the others
            problems.append(f"method {method} unavailable: {exc}")
            progress.update(len(pairs))
            continue
        result.methods.append(method)
        result.scores[method] = []
        with engine:
            for pair in pairs:
                progress.set_postfix_str(f"{method} {pair.name}")
                try:
                    start = time.perf_counter()
                    fused = engine.fuse(pair.ir, pair.vi)
                    elapsed_ms = (time.perf_counter() - start) * 1000.0
                    scores = compute_all(pair.ir_gray, pair.vi_gray, fused_gray_levels(fused))
                except Exception as exc:  # report and carry on with the next pair
                    problems.append(f"method {method} failed on {pair.name}: {exc}")
                    progress.update(1)
                    continue
                result.scores[method].append(scores)
                result.rows.append({"method": method, "image": pair.name, **scores, "fuse_ms": elapsed_ms})
                if save_fused and out is not None:
                    write_image(Path(out) / "fused" / method / f"{pair.name}.png", fused)
                if pair.name in montage_names:
                    result.montage_images[pair.name][method] = fused
                progress.update(1)
    progress.close()
    result.methods = [m for m in result.methods if result.scores[m]]
    return result


def build_engine(spec: str) -> FusionEngine:
    """``NAME`` or ``NAME@WEIGHTS`` (a network with another weights file or training checkpoint, e.g.
    ``m2pn@checkpoints/m2pn_v2/last.pt``); the label in the reports is the spec as given."""
    name, _, weights = spec.partition("@")
    return FusionEngine(name, weights=weights) if weights else FusionEngine(name)


# --- reports ----------------------------------------------------------------------------------------

def summarise(scores: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """metric -> (mean, population std) over the finite values (PSNR may be +inf for a perfect match)."""
    summary = {}
    for name in METRIC_NAMES:
        values = np.array([s[name] for s in scores], dtype=np.float64)
        values = values[np.isfinite(values)]
        summary[name] = (float(values.mean()), float(values.std())) if values.size else (math.nan, math.nan)
    return summary


def best_methods(summaries: dict[str, dict[str, tuple[float, float]]]) -> dict[str, str]:
    """metric -> the method with the best mean (highest, lowest for metrics in LOWER_IS_BETTER)."""
    best = {}
    for name in METRIC_NAMES:
        means = {m: s[name][0] for m, s in summaries.items() if math.isfinite(s[name][0])}
        if means:
            pick = min if name in LOWER_IS_BETTER else max
            best[name] = pick(means, key=means.get)
    return best


def markdown_table(result: EvaluationResult) -> str:
    """The mean +- std table, one row per method, best per metric in bold."""
    summaries = {m: summarise(result.scores[m]) for m in result.methods}
    best = best_methods(summaries)
    header = ["Method", "n"] + [f"{n} {'↓' if n in LOWER_IS_BETTER else '↑'}" for n in METRIC_NAMES] + ["ms/pair"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in result.methods:
        cells = [method, str(len(result.scores[method]))]
        for name in METRIC_NAMES:
            mean, std = summaries[method][name]
            text = f"{mean:.3f} ± {std:.3f}"
            cells.append(f"**{text}**" if best.get(name) == method else text)
        times = [r["fuse_ms"] for r in result.rows if r["method"] == method]
        cells.append(f"{np.mean(times):.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(result: EvaluationResult, path: Path) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "image", *METRIC_NAMES, "fuse_ms"])
        for row in result.rows:
            writer.writerow([row["method"], row["image"]] + [f"{row[n]:.4f}" for n in METRIC_NAMES]
                            + [f"{row['fuse_ms']:.1f}"])


def write_chart(result: EvaluationResult, path: Path) -> None:
    """A 3x4 grid of bar charts (one per metric), methods as bars with std error bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summaries = {m: summarise(result.scores[m]) for m in result.methods}
    fig = Figure(figsize=(15, 9), dpi=80)
    FigureCanvasAgg(fig)
    colours = [f"C{i % 10}" for i in range(len(result.methods))]
    x = np.arange(len(result.methods))
    for i, name in enumerate(METRIC_NAMES):
        ax = fig.add_subplot(3, 4, i + 1)
        means = [summaries[m][name][0] for m in result.methods]
        stds = [summaries[m][name][1] for m in result.methods]
        ax.bar(x, means, yerr=stds, color=colours, capsize=3)
        ax.set_title(f"{name} ({'lower' if name in LOWER_IS_BETTER else 'higher'} is better)", fontsize=10)
        ax.set_xticks(x, result.methods, rotation=30, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Fusion metrics, mean ± std over {len(result.pairs)} pairs")
    fig.tight_layout()
    fig.savefig(path)


def _tile(image: np.ndarray, label: str) -> np.ndarray:
    """Letterbox ``image`` (gray or BGR uint8) into a MONTAGE_TILE cell with a label band on top -> BGR uint8."""
    w, h = MONTAGE_TILE
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    image = image[:, :, :3]
    scale = min(w / image.shape[1], h / image.shape[0])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    cell = np.zeros((h + LABEL_BAND, w, 3), np.uint8)
    cell[:LABEL_BAND] = 255
    y0, x0 = LABEL_BAND + (h - size[1]) // 2, (w - size[0]) // 2
    cell[y0 : y0 + size[1], x0 : x0 + size[0]] = small
    cv2.putText(cell, label, (5, LABEL_BAND - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return cell


def write_montage(result: EvaluationResult, path: Path) -> None:
    """Rows of IR | VIS | each method for the first few pairs, each cell labelled."""
    columns = ["IR", "VIS", *result.methods]
    rows = []
    for name, images in result.montage_images.items():
        blank = np.zeros((MONTAGE_TILE[1], MONTAGE_TILE[0], 3), np.uint8)
        cells = [_tile(images.get(c, blank), f"{name}: {c}" if c == "IR" else c) for c in columns]
        rows.append(np.hstack(cells))
    if not rows:
        return
    montage = np.vstack(rows)
    # Photographic PNGs compress poorly: shrink until the file fits the docs' size budget.
    while True:
        ok, buf = cv2.imencode(".png", montage, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok or buf.size <= MONTAGE_MAX_BYTES or montage.shape[1] < 400:
            break
        montage = cv2.resize(montage, None, fx=0.85, fy=0.85, interpolation=cv2.INTER_AREA)
    if not ok:
        raise FusionError(f"cannot encode the montage as PNG for {path}")
    buf.tofile(str(path))


def method_means(result: EvaluationResult) -> Means:
    """method -> metric -> mean over the evaluated pairs."""
    return {m: {k: v[0] for k, v in summarise(result.scores[m]).items()} for m in result.methods}


def write_pairwise(result: EvaluationResult, reference: Means, out: str | Path, candidates: list[str] | None = None,
                   goal: int = DEFAULT_GOAL) -> str:
    """Write ``pairwise.md`` and ``pairwise.png``: rows are ``candidates`` (default: every evaluated method),
    columns every evaluated method and every reference row. Returns the Markdown table."""
    means = method_means(result)
    rows = {m: means[m] for m in (candidates or result.methods) if m in means}
    opponents = {**means, **reference}
    table = pairwise_markdown(rows, opponents, goal)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pairwise.md").write_text(table)
    write_pairwise_chart(rows, opponents, out / "pairwise.png", goal)
    return table


def write_reports(result: EvaluationResult, out: str | Path) -> Path:
    """Write table.md, per_image.csv, metrics_chart.png and montage.png into ``out``; return the folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(markdown_table(result))
    write_csv(result, out / "per_image.csv")
    write_chart(result, out / "metrics_chart.png")
    write_montage(result, out / "montage.png")
    return out


# --- command line -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with ir/ and vi/ subfolders (names match)")
    parser.add_argument("--methods", default=DEFAULT_METHODS,
                        help=f"comma-separated; NAME@WEIGHTS picks a weights file for a network (default {DEFAULT_METHODS})")
    parser.add_argument("--out", required=True, help="folder for table.md, per_image.csv and the PNGs")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N pairs")
    parser.add_argument("--save-fused", action="store_true", help="also write OUT/fused/METHOD/NAME.png")
    parser.add_argument("--montage-pairs", type=int, default=3, help="pairs shown in montage.png (default 3)")
    parser.add_argument("--reference", default=None,
                        help="CSV of published figures (method,EN,SD,...; e.g. ../shared/data/reference/tno_peers.csv): "
                             "also write pairwise.md/png, on how many of the nine metrics each method is higher")
    parser.add_argument("--candidates", default=None,
                        help="comma-separated rows of the pairwise table (default: every evaluated method)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        print("error: --methods is empty", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        reference = read_reference_csv(args.reference) if args.reference else {}
        result = evaluate(args.data, methods, args.out, args.limit, args.save_fused, args.montage_pairs)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if result.evaluated == 0:
        print("error: nothing could be evaluated (see the warnings above)", file=sys.stderr)
        return 1
    out = write_reports(result, args.out)
    print(markdown_table(result))
    if args.reference:
        candidates = [c.strip() for c in args.candidates.split(",")] if args.candidates else None
        print(write_pairwise(result, reference, out, candidates))
    print(f"{result.evaluated} fusions of {len(result.pairs)} pairs by {len(result.methods)} methods; "
          f"reports in {out}" + (f"; {len(result.problems)} problem(s) reported above" if result.problems else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
