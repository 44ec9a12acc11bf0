"""How a quality evaluator scores real patches and their degradations (calibration and sanity check).

    python -m engine.quality.calibrate [--data DIR] [--patches 512] [--kind noref | --kind clip --model-dir D]
                                       [--out runs/quality_calibration] [--seed 0] [--threads 1]

Crops ``--patches`` random 128x128 patch pairs from DIR (default: RoadScene in the shared data, with
``ir/`` and ``vi/`` matched by name), builds the images the memory bank could see — IR, VIS, their
average and maximum — and degraded averages (5x5 box blur, 0.3x darkening, 0.3x contrast, Gaussian noise
of sigma 0.03 and 0.08), and scores them all. Writes to OUT:

* ``scores.md``          median and 10th/90th percentile score per variant, and the time per batch of 16
* ``scores.json``        the same numbers, plus the command's settings
* ``distributions.png``  one box plot per variant

The noref evaluator's reference values (its docstring) are the medians this command prints for "average".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..color import to_gray
from ..errors import FusionError, FusionInputError
from ..imageio import match_pairs, read_image
from ..paths import shared_data_dir
from . import QUALITY_EVALUATOR_KINDS, build_quality_evaluator

PATCH = 128
BATCH = 16


def sample_patches(data: Path, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random aligned patch pairs -> (ir, vi), each (count, 1, 128, 128) float32 in [0, 1]."""
    pairs = match_pairs(data / "ir", data / "vi").pairs
    if not pairs:
        raise FusionInputError(f"no IR/VIS pairs matched by name in {data}/ir and {data}/vi")
    rng = np.random.default_rng(seed)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    ir_patches, vi_patches = [], []
    for _ in tqdm(range(count), desc="cropping patches", unit="patch"):
        index = int(rng.integers(len(pairs)))
        if index not in cache:
            ir_path, vi_path = pairs[index]
            ir, vi = to_gray(read_image(ir_path), str(ir_path)), to_gray(read_image(vi_path), str(vi_path))
            if ir.shape != vi.shape or min(ir.shape) < PATCH:
                raise FusionInputError(
                    f"{ir_path.name}: IR {ir.shape} and VIS {vi.shape} differ in size or are under {PATCH} px"
                )
            cache[index] = (ir, vi)
        ir, vi = cache[index]
        y, x = int(rng.integers(ir.shape[0] - PATCH + 1)), int(rng.integers(ir.shape[1] - PATCH + 1))
        ir_patches.append(ir[y:y + PATCH, x:x + PATCH])
        vi_patches.append(vi[y:y + PATCH, x:x + PATCH])
    return torch.from_numpy(np.stack(ir_patches))[:, None], torch.from_numpy(np.stack(vi_patches))[:, None]


def make_variants(ir: torch.Tensor, vi: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """The fused-image stand-ins and degradations, each (N, 1, 128, 128) in [0, 1]."""
    avg = (ir + vi) / 2
    noise = torch.randn(avg.shape, generator=torch.Generator().manual_seed(seed))
    mean = avg.mean(dim=(2, 3), keepdim=True)
    return {
        "ir": ir,
        "vi": vi,
        "average": avg,
        "max": torch.maximum(ir, vi),
        "average, 5x5 box blur": F.avg_pool2d(F.pad(avg, (2, 2, 2, 2), mode="reflect"), 5, stride=1),
        "average x 0.3 (dark)": avg * 0.3,
        "average, contrast x 0.3": mean + (avg - mean) * 0.3,
        "average + noise 0.03": (avg + 0.03 * noise).clamp(0, 1),
        "average + noise 0.08": (avg + 0.08 * noise).clamp(0, 1),
    }


def score_all(evaluator, images: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Scores of (N, 1, H, W) images in batches of 16 -> ((N,) scores, median seconds per batch)."""
    scores, times = [], []
    for start in range(0, len(images), BATCH):
        t0 = time.perf_counter()
        scores.append(evaluator(images[start:start + BATCH]))
        times.append(time.perf_counter() - t0)
    return torch.cat(scores), float(np.median(times))


def save_plot(results: dict[str, np.ndarray], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(9, 4.8))
    ax.boxplot([results[n] for n in names], orientation="horizontal", showfliers=False)
    ax.set_yticks(range(1, len(names) + 1), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("quality score Q (0..1)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.quality.calibrate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="folder with ir/ and vi/ (default: shared RoadScene)")
    parser.add_argument("--patches", type=int, default=512, help="number of random 128x128 patches")
    parser.add_argument("--kind", default="noref", choices=QUALITY_EVALUATOR_KINDS)
    parser.add_argument("--model-dir", type=Path, help="local CLIP folder (with --kind clip)")
    parser.add_argument("--out", type=Path, default=Path("runs/quality_calibration"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (timing depends on it)")
    return parser


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    data = args.data
    if data is None:
        shared = shared_data_dir()
        if shared is None:
            raise FusionInputError("no --data given and the shared datasets (../shared/data) are not present")
        data = shared / "roadscene"
    if not (data / "ir").is_dir() or not (data / "vi").is_dir():
        raise FusionInputError(f"{data} must contain ir/ and vi/ folders")
    if args.patches < 1:
        raise FusionInputError("--patches must be at least 1")
    options = {"model_dir": args.model_dir} if args.kind == "clip" else {}
    evaluator = build_quality_evaluator(args.kind, **options)
    ir, vi = sample_patches(data, args.patches, args.seed)
    variants = make_variants(ir, vi, args.seed)
    evaluator(variants["average"][:BATCH])  # warm-up before timing
    results, batch_seconds = {}, []
    for name, images in tqdm(variants.items(), desc=f"scoring with {args.kind}", unit="variant"):
        scores, seconds = score_all(evaluator, images)
        results[name] = scores.numpy()
        batch_seconds.append(seconds)
    ms_per_batch = 1000 * float(np.median(batch_seconds))

    args.out.mkdir(parents=True, exist_ok=True)
    version = getattr(evaluator, "version", evaluator.name)
    rows = [f"| {n} | {np.median(s):.3f} | {np.percentile(s, 10):.3f} | {np.percentile(s, 90):.3f} |"
            for n, s in results.items()]
    table = "\n".join([
        f"Quality evaluator `{version}` on {args.patches} random {PATCH}x{PATCH} patches of {data} (seed {args.seed})",
        "",
        "| variant | median | p10 | p90 |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        f"{ms_per_batch:.1f} ms per batch of {BATCH} patches ({args.threads} torch thread(s), median).",
    ])
    (args.out / "scores.md").write_text(table + "\n")
    summary = {n: {"median": float(np.median(s)), "p10": float(np.percentile(s, 10)),
                   "p90": float(np.percentile(s, 90))} for n, s in results.items()}
    (args.out / "scores.json").write_text(json.dumps({
        "evaluator": version, "data": str(data), "patches": args.patches, "seed": args.seed,
        "threads": args.threads, "ms_per_batch_of_16": round(ms_per_batch, 2), "scores": summary,
    }, indent=2))
    save_plot(results, f"{version}: {args.patches} patches of {data.name}", args.out / "distributions.png")
    print(table)
    print(f"wrote {args.out}/scores.md, scores.json, distributions.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
