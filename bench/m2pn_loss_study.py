"""How far can each training objective go? Optimise the fused image itself under a loss (no network) and score
the optimum with the nine standard metrics beside the classical methods, on held-out validation crops.

    python bench/m2pn_loss_study.py [--variants paper,ms_w2,...] [--iterations 100] [--json OUT] [--markdown OUT] [--png OUT]

A network trained on a loss can at best approach the image that minimises it; if a guided filter beats that
image on most metrics, no amount of training on that loss will earn the network its place. The crops come
from the pairs the training holds out for validation (5 RoadScene + 5 MSRS night pairs, 192x192 each), never
from TNO or MSRS test. Each optimum starts from the average of the sources, is parameterised through a
sigmoid (so it stays in [0, 1]) and runs ``iterations`` Adam steps (lr 0.08) on ``w_int L_w + lambda L_s`` with the
variant's settings (engine/m2pn/losses.py). Slow on 2 cores (about a minute per variant): a study, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.datasets import load_pair_luma, split_pairs  # noqa: E402
from engine.fusion_engine import FusionEngine  # noqa: E402
from engine.m2pn.losses import LossConfig, intensity_loss, structure_loss  # noqa: E402
from engine.metrics import compute_all  # noqa: E402
from engine.pairwise import PAIRWISE_METRICS, wins  # noqa: E402
from engine.paths import shared_data_dir  # noqa: E402

#: name -> LossConfig overrides (lambda 15 throughout)
VARIANTS: dict[str, dict] = {
    "paper_k0": {"decision_k": 0.0},
    "paper_k-0.5": {"decision_k": -0.5},
    "paper_k+0.5": {"decision_k": 0.5},
    "grad_w3": {"decision_k": -0.5, "gradient_weight": 3.0},
    "ms_w1": {"decision_k": -0.5, "gradient_scales": (1, 2, 4, 8), "gradient_weight": 1.0},
    "ms_w2": {"decision_k": -0.5, "gradient_scales": (1, 2, 4, 8), "gradient_weight": 2.0},
    "ms_w3": {"decision_k": -0.5, "gradient_scales": (1, 2, 4, 8), "gradient_weight": 3.0},
    "ms_fine_w2": {"decision_k": -0.5, "gradient_scales": (1, 1, 2, 4, 8), "gradient_weight": 2.0},
    "ms_fine_w3": {"decision_k": -0.5, "gradient_scales": (1, 1, 2, 4, 8), "gradient_weight": 3.0},
    "max_ms_w2": {"intensity_target": "max", "gradient_scales": (1, 2, 4, 8), "gradient_weight": 2.0},
    "max5_ms_w2": {"intensity_target": "max", "intensity_weight": 5.0, "gradient_scales": (1, 2, 4, 8),
                   "gradient_weight": 2.0},
    "max10_ms_w2": {"intensity_target": "max", "intensity_weight": 10.0, "gradient_scales": (1, 2, 4, 8),
                    "gradient_weight": 2.0},
    "max10_ms_w3": {"intensity_target": "max", "intensity_weight": 10.0, "gradient_scales": (1, 2, 4, 8),
                    "gradient_weight": 3.0},
    "max20_ms_w3": {"intensity_target": "max", "intensity_weight": 20.0, "gradient_scales": (1, 2, 4, 8),
                    "gradient_weight": 3.0},
    "vec_ms_w2": {"decision_k": -0.5, "gradient_scales": (1, 2, 4, 8), "gradient_weight": 2.0, "gradient_mode": "vector"},
    "vec_ms_w3": {"decision_k": -0.5, "gradient_scales": (1, 2, 4, 8), "gradient_weight": 3.0, "gradient_mode": "vector"},
    "vec_ms_w5": {"decision_k": -0.5, "gradient_scales": (1, 2, 4, 8), "gradient_weight": 5.0, "gradient_mode": "vector"},
    "vec_ms_w8": {"decision_k": -0.5, "gradient_scales": (1, 2, 4, 8), "gradient_weight": 8.0, "gradient_mode": "vector"},
    "vec1_w3": {"decision_k": -0.5, "gradient_scales": (1,), "gradient_weight": 3.0, "gradient_mode": "vector"},
    "vec_ms_w3_max10": {"intensity_target": "max", "intensity_weight": 10.0, "gradient_scales": (1, 2, 4, 8),
                        "gradient_weight": 3.0, "gradient_mode": "vector"},
}
CLASSICAL = ("average", "max", "laplacian", "gff")
CROP = 192


def validation_crops() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, ir, vi) 192x192 float32 crops of held-out pairs: RoadScene's validation split (seed 0, 40 pairs,
    as the training uses) and MSRS extra night pairs of the training's validation split."""
    data = shared_data_dir()
    if data is None:
        raise SystemExit("error: ../shared/data not found (set IRVIS_DATA_DIR)")
    roadscene = split_pairs(data / "roadscene", 40, 0).val[:5]
    extra = split_pairs(data / "msrs" / "extra", 20, 0).val
    night = [p for p in extra if p[0].stem.endswith("N")][:5]
    crops = []
    for k, (ir_path, vi_path) in enumerate(roadscene + night):
        ir, vi = load_pair_luma(ir_path, vi_path)
        h, w = ir.shape
        y, x = (h - CROP) // 2, min(w - CROP, (w - CROP) // 2 + (k % 2) * 40)
        crops.append((ir_path.name, ir[y:y + CROP, x:x + CROP], vi[y:y + CROP, x:x + CROP]))
    return crops


def optimum(ir: np.ndarray, vi: np.ndarray, cfg: LossConfig, iterations: int) -> np.ndarray:
    """The fused image minimising ``L_w + lambda L_s`` for one pair. (H, W) float32 x2 -> (H, W) float64."""
    a, b = (torch.from_numpy(np.ascontiguousarray(t))[None, None] for t in (ir, vi))
    z = torch.logit(((a + b) / 2).clamp(0.02, 0.98)).requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=0.08)
    for _ in range(iterations):
        f = torch.sigmoid(z)
        loss = cfg.intensity_weight * intensity_loss(f, a, b, cfg) + cfg.fidelity_lambda * structure_loss(
            f, a, b, cfg.ssim_window, cfg.gradient_scales, cfg.gradient_weight, cfg.gradient_mode)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return torch.sigmoid(z).detach()[0, 0].double().numpy()


def score(crops, fused: list[np.ndarray]) -> dict[str, float]:
    """Mean of the nine metrics on 8-bit versions of the crops and the fused images."""
    rows = [compute_all(np.round(ir * 255).astype(np.float64), np.round(vi * 255).astype(np.float64),
                        np.clip(np.round(f * 255), 0, 255)) for (_, ir, vi), f in zip(crops, fused)]
    return {m: float(np.mean([r[m] for r in rows])) for m in PAIRWISE_METRICS}


def markdown(results: dict[str, dict[str, float]], variants: list[str]) -> str:
    lines = ["| objective / method | " + " | ".join(PAIRWISE_METRICS) + " | higher than " + ", ".join(CLASSICAL) + " on |",
             "|---|" + "---|" * (len(PAIRWISE_METRICS) + 1)]
    for name, row in results.items():
        beats = ", ".join(f"{wins(row, results[c])}/9" for c in CLASSICAL) if name in variants else ""
        lines.append(f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in PAIRWISE_METRICS) + f" | {beats} |")
    return "\n".join(lines) + "\n"


def chart(results: dict[str, dict[str, float]], variants: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.5 * len(variants) + 1.5))
    grid = np.array([[wins(results[v], results[c]) for c in CLASSICAL] for v in variants])
    ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=9, aspect="auto")
    for i in range(len(variants)):
        for j in range(len(CLASSICAL)):
            ax.text(j, i, f"{grid[i, j]}/9", ha="center", va="center", fontweight="bold" if grid[i, j] >= 6 else None)
    ax.set_xticks(range(len(CLASSICAL)), CLASSICAL)
    ax.set_yticks(range(len(variants)), variants)
    ax.set_title("optimum of each objective: metrics (of 9) higher than the classical method", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated of {', '.join(VARIANTS)}")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--png", type=Path)
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        print(f"error: unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    crops = validation_crops()
    results: dict[str, dict[str, float]] = {}
    for method in CLASSICAL:
        engine = FusionEngine(method)
        fused = [engine.fuse(np.round(ir * 255).astype(np.uint8), np.round(vi * 255).astype(np.uint8)) / 255.0
                 for _, ir, vi in crops]
        results[method] = score(crops, fused)
        print(f"{method:12s} " + " ".join(f"{m}={results[method][m]:.3f}" for m in PAIRWISE_METRICS), flush=True)
    for name in variants:
        start = time.monotonic()
        cfg = LossConfig.from_dict(VARIANTS[name])
        results[name] = score(crops, [optimum(ir, vi, cfg, args.iterations) for _, ir, vi in crops])
        print(f"{name:12s} " + " ".join(f"{m}={results[name][m]:.3f}" for m in PAIRWISE_METRICS)
              + f"  ({time.monotonic() - start:.0f} s)", flush=True)
    table = markdown(results, variants)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"crops": [c[0] for c in crops], "iterations": args.iterations,
                                         "variants": {v: VARIANTS[v] for v in variants}, "results": results},
                                        indent=1, default=list) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table)
    if args.png:
        chart(results, variants, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
