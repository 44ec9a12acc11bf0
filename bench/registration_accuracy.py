"""Accuracy of the automatic registration fit (`calibration.auto.auto_align`, unchecked) on all TNO pairs
under random known warps. (Whether the checked `python -m calibration auto` can be trusted, i.e. refuses
what it gets wrong, is measured by bench/calibration_faults.py.)

For each TNO pair and each of K random warps (shift up to 10% of the width, rotation up to 5 degrees,
scale 0.9-1.1) a new thermal view is made with ``ir_new(q) = ir(H q)``, so the thermal -> colour
homography of the new pair is ``B @ H`` where ``B`` is the registration of the original pair.

TNO's own pairs are not perfectly registered (several pixels on many pairs, far more on a few), so
two errors are reported, both as RMS distance over the four image corners (colour pixels):

* ``consistency``: against ``B_hat @ H``, with ``B_hat`` = auto_align on the original pair restricted to the
  same thermal content (the part of the old view the warped view still shows). This isolates what the
  test checks: does the estimate move exactly by the applied warp, from up to 10% / 5 deg / 10% away?
* ``vs_warp``: against ``H`` alone, i.e. assuming the dataset pair were perfectly registered. It includes
  the dataset's own misalignment (and any bias of the method), so it is an upper bound on the error.

    python bench/registration_accuracy.py [--warps 3] [--seed 0] [--out bench/results/registration]

Writes a CSV (one row per pair and warp), a per-pair table (printed and as PNG) and a summary.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.auto import auto_align  # noqa: E402
from calibration.calibration_file import corner_rms  # noqa: E402
from calibration.synthetic import mask_in_original, random_warp, warp_view  # noqa: E402
from engine.paths import shared_data_dir  # noqa: E402

SUCCESS_PX = 1.0


def run(warps: int, seed: int, out: Path, limit: int | None = None) -> list[dict]:
    from tqdm import tqdm

    data = shared_data_dir()
    if data is None or not (data / "tno" / "ir").is_dir():
        raise SystemExit("error: TNO pairs not found (../shared/data/tno or IRVIS_DATA_DIR)")
    names = sorted(p.name for p in (data / "tno" / "ir").iterdir() if p.suffix.lower() == ".png")[:limit]
    rng = np.random.default_rng(seed)
    rows = []
    for name in tqdm(names, desc="TNO pairs", unit="pair"):
        ir = cv2.imread(str(data / "tno" / "ir" / name), cv2.IMREAD_GRAYSCALE)
        vi = cv2.imread(str(data / "tno" / "vi" / name), cv2.IMREAD_COLOR)
        h, w = vi.shape[:2]
        for k in range(warps):
            warp, params = random_warp(rng, (w, h))
            ir_new, mask = warp_view(ir, warp)
            t0 = time.perf_counter()
            result = auto_align(ir_new, vi, ir_mask=mask)
            seconds = time.perf_counter() - t0
            reference = auto_align(ir, vi, ir_mask=mask_in_original(mask, warp, (w, h))).homography
            rows.append({"pair": name, "warp": k, "width": w, "height": h, **{k2: round(v, 3) for k2, v in params.items()},
                         "consistency_px": corner_rms(reference @ warp, result.homography, (w, h)),
                         "vs_warp_px": corner_rms(warp, result.homography, (w, h)),
                         "fit_score": result.score, "seconds": seconds})
    out.mkdir(parents=True, exist_ok=True)
    with (out / "registration_accuracy.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def per_pair_table(rows: list[dict]) -> list[list[str]]:
    table = [["pair", "size", "consistency RMS px (median / max)", "success (<1 px)", "vs warp px (median)",
              "fit score", "time s"]]
    for name in sorted({r["pair"] for r in rows}):
        rs = [r for r in rows if r["pair"] == name]
        cons = [r["consistency_px"] for r in rs]
        table.append([name, f"{rs[0]['width']}x{rs[0]['height']}", f"{statistics.median(cons):.2f} / {max(cons):.2f}",
                      f"{sum(c < SUCCESS_PX for c in cons)}/{len(cons)}",
                      f"{statistics.median(r['vs_warp_px'] for r in rs):.1f}",
                      f"{statistics.median(r['fit_score'] for r in rs):.2f}",
                      f"{statistics.mean(r['seconds'] for r in rs):.2f}"])
    return table


def summary(rows: list[dict]) -> str:
    cons = [r["consistency_px"] for r in rows]
    vs = [r["vs_warp_px"] for r in rows]
    ok = sum(c < SUCCESS_PX for c in cons)
    return (f"{len(rows)} warps on {len({r['pair'] for r in rows})} pairs: consistency < {SUCCESS_PX:g} px in "
            f"{ok}/{len(rows)} ({100 * ok / len(rows):.0f}%), < 2 px in {sum(c < 2 for c in cons)}/{len(rows)}; "
            f"median {statistics.median(cons):.2f} px; vs-warp median {statistics.median(vs):.1f} px; "
            f"time per alignment mean {statistics.mean(r['seconds'] for r in rows):.2f} s "
            f"(max {max(r['seconds'] for r in rows):.2f} s)")


def save_table_png(table: list[list[str]], caption: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 0.28 * len(table) + 1.2))
    ax.axis("off")
    tab = ax.table(cellText=table[1:], colLabels=table[0], loc="center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1, 1.15)
    ax.set_title(caption, fontsize=9, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warps", type=int, default=3, help="random warps per pair (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs (quick look)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/registration"))
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # comparable timings on a shared machine
    rows = run(args.warps, args.seed, args.out, args.limit)
    table = per_pair_table(rows)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    text = summary(rows)
    print(text)
    (args.out / "summary.txt").write_text(text + "\n")
    save_table_png(table, text, args.out / "registration_accuracy.png")
    print(f"wrote {args.out}/registration_accuracy.csv, registration_accuracy.png, summary.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
