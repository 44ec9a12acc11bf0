"""Quality of real-time M2PN (``m2pn_rt``) against the full-resolution network on the TNO pairs.

    python -m bench.realtime_quality [--weights engine/weights/m2pn.pt] [--scales 0.25] [--json OUT.json]
                                     [--markdown OUT.md] [--png docs/images/bench_rt_quality.png]

For every pair: the full-resolution M2PN output (reference) and ``m2pn_rt`` at each scale; Qabf, VIF and
SSIM of each (the project's metric implementations, on the 8-bit images as saved); the mean over the pairs
and the relative difference to the reference. The target is |difference| <= 3 % for all three.
The reference runs the same network on ONNX Runtime (``m2pn_rt`` with scale 1, i.e. no guided step);
its output agrees with eager PyTorch to ~1e-6 (checked when the session is built).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.color import to_float01, to_gray, to_uint8
from engine.errors import FusionError
from engine.evaluate import LoadedPair, load_pairs
from engine.metrics import qabf, ssim, vif
from engine.paths import shared_data_dir
from engine.realtime.method import DEFAULT_EPS, DEFAULT_MAX_WORK_PIXELS, DEFAULT_RADIUS
from engine.registry import create_method

QUALITY_METRICS = {"Qabf": qabf, "VIF": vif, "SSIM": ssim}
TOLERANCE_PCT = 3.0


def dataset_label(data: Path) -> str:
    """``../shared/data/tno`` -> ``TNO``; ``.../msrs/test`` -> ``MSRS`` (a split folder is named by its parent)."""
    return (data.parent.name if data.name in ("test", "train") else data.name).upper()


def fuse_gray(method, pair: LoadedPair) -> np.ndarray:
    """Fuse one pair with a luminance method -> (H, W) float64 grey levels of the uint8 result."""
    ir = to_float01(to_gray(pair.ir))
    vi = to_float01(to_gray(pair.vi))
    return to_uint8(method.fuse(ir, vi)).astype(np.float64)


def scores_of(pair: LoadedPair, fused: np.ndarray) -> dict[str, float]:
    return {name: float(fn(pair.ir_gray, pair.vi_gray, fused)) for name, fn in QUALITY_METRICS.items()}


def run(data: Path, weights: Path | None, scales: list[float], radius: int, eps: float, limit: int | None,
        threads: int | None, max_work_pixels: int | None = DEFAULT_MAX_WORK_PIXELS) -> dict:
    """Evaluate; returns ``{"pairs", "reference", "variants": [{scale, means, rel_pct, ms_per_pair}], ...}``."""
    problems: list[str] = []
    pairs = load_pairs(data, limit, problems)
    if not pairs:
        raise FusionError(f"no readable pairs in {data}: {'; '.join(problems) or 'empty'}")
    opts = {"weights": weights, "radius": radius, "eps": eps}
    if threads is not None:
        opts["threads"] = threads
    reference = create_method("m2pn_rt", scale=1.0, max_work_pixels=None, **opts)
    variants = {s: create_method("m2pn_rt", scale=s, max_work_pixels=max_work_pixels, **opts) for s in scales}
    ref_scores: list[dict[str, float]] = []
    var_scores: dict[float, list[dict[str, float]]] = {s: [] for s in scales}
    var_ms: dict[float, list[float]] = {s: [] for s in scales}
    example = {}
    for pair in tqdm(pairs, desc=f"{dataset_label(data)} pairs", unit="pair"):
        ref = fuse_gray(reference, pair)
        ref_scores.append(scores_of(pair, ref))
        for s, method in variants.items():
            t0 = time.perf_counter()
            fused = fuse_gray(method, pair)
            var_ms[s].append((time.perf_counter() - t0) * 1000.0)
            var_scores[s].append(scores_of(pair, fused))
            if pair is pairs[0]:  # the side-by-side shows the first pair
                example.update(pair=pair, ref=ref)
                example.setdefault("variants", {})[s] = fused
    ref_mean = {k: float(np.mean([r[k] for r in ref_scores])) for k in QUALITY_METRICS}
    rows = []
    for s in scales:
        means = {k: float(np.mean([r[k] for r in var_scores[s]])) for k in QUALITY_METRICS}
        rel = {k: 100.0 * (means[k] - ref_mean[k]) / ref_mean[k] for k in QUALITY_METRICS}
        rows.append({"scale": s, "means": means, "rel_pct": rel,
                     "within_tolerance": all(abs(v) <= TOLERANCE_PCT for v in rel.values()),
                     "ms_per_pair_median": float(np.median(var_ms[s]))})
    for m in [reference, *variants.values()]:
        backend = m.backend
        m.close()
    return {"data": str(data), "dataset": dataset_label(data), "pairs": len(pairs), "weights": str(weights or "engine/weights/m2pn.pt"),
            "radius": radius, "eps": eps, "max_work_pixels": max_work_pixels, "backend": backend, "reference": ref_mean, "variants": rows,
            "problems": problems, "_example": example}


def markdown(result: dict) -> str:
    """The quality table for docs/benchmarks.md."""
    names = list(QUALITY_METRICS)
    head = "| variant | " + " | ".join(names) + " | " + " | ".join(f"Δ{n} %" for n in names) + " | within 3 % |"
    budget = result.get("max_work_pixels")
    budget_text = f"network input capped at {budget} pixels" if budget else "no pixel cap"
    lines = [f"Quality on {result['pairs']} {result.get('dataset', 'TNO')} pairs (mean; weights `{result['weights']}`; guided radius "
             f"{result['radius']}, eps {result['eps']:g}; {budget_text}):", "", head,
             "|" + "---|" * (2 * len(names) + 2)]
    ref = result["reference"]
    lines.append("| m2pn full resolution | " + " | ".join(f"{ref[n]:.4f}" for n in names) + " | "
                 + " | ".join("—" for _ in names) + " | reference |")
    for row in result["variants"]:
        lines.append(f"| m2pn_rt scale {row['scale']:g} | " + " | ".join(f"{row['means'][n]:.4f}" for n in names)
                     + " | " + " | ".join(f"{row['rel_pct'][n]:+.2f}" for n in names)
                     + f" | {'yes' if row['within_tolerance'] else 'no'} |")
    return "\n".join(lines) + "\n"


def write_png(result: dict, path: Path) -> None:
    """Side by side on one TNO pair: IR | VIS | full M2PN | m2pn_rt at each scale, labelled."""
    import cv2

    ex = result.get("_example")
    if not ex:
        return
    pair = ex["pair"]
    tiles = [("IR", pair.ir_gray), ("VIS", pair.vi_gray), ("M2PN full", ex["ref"])]
    tiles += [(f"m2pn_rt x{s:g}", img) for s, img in ex["variants"].items()]
    out = []
    for label, img in tiles:
        tile = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        if tile.shape[0] > 288:  # keep the docs image small (a few hundred kB)
            tile = cv2.resize(tile, (round(tile.shape[1] * 288 / tile.shape[0]), 288), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2, cv2.LINE_AA)
        out.append(tile)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate(out, axis=1))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.realtime_quality", description=__doc__.split("\n\n")[0])
    tno = shared_data_dir() / "tno" if shared_data_dir() else None
    p.add_argument("--data", type=Path, default=tno, help="folder with ir/ and vi/ (default: the shared TNO pairs)")
    p.add_argument("--weights", type=Path, default=None, help="M2PN weights (default engine/weights/m2pn.pt)")
    p.add_argument("--scales", type=float, nargs="+", default=[0.25], help="m2pn_rt scales to compare (default 0.25)")
    p.add_argument("--radius", type=int, default=DEFAULT_RADIUS, help=f"guided-filter radius (low-resolution pixels; default {DEFAULT_RADIUS})")
    p.add_argument("--eps", type=float, default=DEFAULT_EPS, help="guided-filter regulariser")
    p.add_argument("--max-work-pixels", type=int, default=DEFAULT_MAX_WORK_PIXELS,
                   help=f"cap on the network's input pixels (default {DEFAULT_MAX_WORK_PIXELS}; 0: no cap)")
    p.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the network")
    p.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    p.add_argument("--markdown", type=Path, default=None, help="write the Markdown table")
    p.add_argument("--png", type=Path, default=Path("docs/images/bench_rt_quality.png"),
                   help="side-by-side example image (default docs/images/bench_rt_quality.png)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data is None:
        print("error: no --data given and the shared TNO pairs (../shared/data/tno) are not present", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = run(args.data, args.weights, args.scales, args.radius, args.eps, args.limit, args.threads,
                     args.max_work_pixels or None)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = markdown(result)
    print(table)
    if args.png:
        write_png(result, args.png)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(public, indent=2) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table)
    return 0 if all(r["within_tolerance"] for r in result["variants"]) else 1


if __name__ == "__main__":
    sys.exit(main())
