"""Time the 12 fusion metrics over the 25 TNO pairs (fused image = the average method).

    python bench/metrics_speed.py [--data DIR] [--repeat 1] [--chart OUT.png]

Prints the time per metric and in total (the goal: the whole set under a minute on 2 CPU cores).
A speed figure, not a test: it depends on the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from engine import FusionEngine  # noqa: E402
from engine.imageio import match_pairs, read_image  # noqa: E402
from engine.metrics import METRICS, as_gray_levels, load_gray  # noqa: E402
from engine.paths import shared_data_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = shared_data_dir() / "tno" if shared_data_dir() else None
    parser.add_argument("--data", type=Path, default=default, help="folder with ir/ and vi/ (default: shared TNO)")
    parser.add_argument("--repeat", type=int, default=1, help="time each metric this many times per pair")
    parser.add_argument("--chart", type=Path, default=None, help="also save a bar chart of the times as PNG")
    args = parser.parse_args(argv)
    if args.data is None or not (args.data / "ir").is_dir():
        print("error: TNO pairs not found; pass --data DIR with ir/ and vi/ inside", file=sys.stderr)
        return 2

    pairs = match_pairs(args.data / "ir", args.data / "vi").pairs
    engine = FusionEngine("average")
    triples = []
    for ir_path, vi_path in pairs:  # fusing and reading are not part of the timed metrics
        fused = engine.fuse(read_image(ir_path), read_image(vi_path))
        triples.append((load_gray(ir_path), load_gray(vi_path), as_gray_levels(fused)))

    seconds = {name: 0.0 for name in METRICS}
    for ir, vi, fused in tqdm(triples, desc="metrics", unit="pair"):
        for name, fn in METRICS.items():
            start = time.perf_counter()
            for _ in range(args.repeat):
                fn(ir, vi, fused)
            seconds[name] += (time.perf_counter() - start) / args.repeat

    total = sum(seconds.values())
    pixels = sum(t[0].size for t in triples)
    print(f"{len(triples)} pairs, {pixels / 1e6:.1f} Mpixel in all")
    print(f"{'metric':6s} {'total s':>8s} {'ms/pair':>8s}")
    for name, s in seconds.items():
        print(f"{name:6s} {s:8.3f} {s / len(triples) * 1e3:8.1f}")
    print(f"{'all':6s} {total:8.3f} {total / len(triples) * 1e3:8.1f}")
    if args.chart:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 4), dpi=80)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.bar(list(seconds), np.array(list(seconds.values())) / len(triples) * 1e3)
        ax.set_ylabel("ms per pair")
        ax.set_title(f"Metric time per TNO pair (all 12: {total:.1f} s for {len(triples)} pairs)")
        fig.tight_layout()
        fig.savefig(args.chart)
        print(f"chart saved to {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
