"""Can `python -m calibration auto` be trusted? Every result must be right or refused, never silently wrong.

Three measurements, each with a criterion independent of the method's own score:

1. MSRS `ir_warp` -> `vi` (the 20 test pairs, thermal deliberately misaligned): the aligned thermal image
   `ir` beside each `ir_warp` is ground truth. Normalised cross-correlation (same modality, so NCC is
   reliable) between `ir` and the thermal image as the calibration puts it on the colour grid, against the
   same for the plain resize. Outcome per pair: improved / unchanged (within 0.02) / worse, or refused.
2. TNO known warp (all 25 pairs): the visible image is warped by rotation 3 deg, scale 1.05 and a shift of
   4 % of the width; the thermal -> colour mapping of the new pair is W @ B, B the pair's own registration.
   TNO's pairs are not registered to a pixel (several pixels on many), so B is estimated by the same method
   on the unwarped pair over the same colour content, and the error is the corner RMS between the result
   and W @ B ("consistency": does the answer move exactly by the applied warp?). The error against W alone
   (assuming B = identity) is reported too. Outcome: recovered (accepted, < 1 px) / refused / wrong (accepted, >= 1 px).
3. Video pairs (M3SVD, registered to < 1.2 px): the same known warp applied to every visible frame; one
   frame against 8 frames sampled evenly; error against W (the pairs' own registration is near identity).

    python bench/calibration_faults.py [--out docs/registration_results] [--doc docs/reliability_calibration.md]
    # or the three parts in parallel, then the page:
    python bench/calibration_faults.py --only msrs & python bench/calibration_faults.py --only tno & ...
    python bench/calibration_faults.py --from-parts

Writes calibration_faults.csv, calibration_faults.png and the markdown page with the tables.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.auto import auto_align  # noqa: E402
from calibration.auto_verified import auto_calibrate, start_homography  # noqa: E402
from calibration.calibration_file import corner_rms  # noqa: E402
from calibration.frames import video_pairs  # noqa: E402
from calibration.structure import empty_border  # noqa: E402
from calibration.synthetic import similarity_about_center  # noqa: E402
from engine.paths import shared_data_dir  # noqa: E402

SUCCESS_PX = 1.0
NCC_MARGIN = 0.02
KNOWN_WARP = {"scale": 1.05, "angle_deg": 3.0, "shift_frac": 0.04}


def known_warp(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return similarity_about_center((w, h), KNOWN_WARP["scale"], KNOWN_WARP["angle_deg"], (KNOWN_WARP["shift_frac"] * w, 0.0))


def _ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    x, y = a[mask].astype(np.float64), b[mask].astype(np.float64)
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / den) if den > 0 else float("nan")


def ncc_to_truth(ir_moving: np.ndarray, ir_truth: np.ndarray, h: np.ndarray) -> float:
    """NCC between the ground-truth thermal image and ``ir_moving`` put on the colour grid by ``h``,
    over the pixels both cover (border eroded)."""
    hgt, wid = ir_truth.shape[:2]
    on = cv2.warpPerspective(ir_moving, h, (wid, hgt), flags=cv2.INTER_LINEAR)
    # ir_warp has an empty (black) border of its own: compare only where it has content
    cover = cv2.warpPerspective(empty_border(ir_moving), h, (wid, hgt), flags=cv2.INTER_NEAREST)
    return _ncc(on, ir_truth, cv2.erode(cover, np.ones((7, 7), np.uint8)) > 0)


def msrs_rows(data: Path, progress) -> list[dict]:
    folder = data / "msrs" / "test"
    rows = []
    for path in progress(sorted((folder / "ir_warp").glob("*.png")), "MSRS ir_warp"):
        ir_warp = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        ir = cv2.imread(str(folder / "ir" / path.name), cv2.IMREAD_GRAYSCALE)
        vi = cv2.imread(str(folder / "vi" / path.name), cv2.IMREAD_COLOR)
        verdict = auto_calibrate(ir_warp, vi)
        start = start_homography((ir_warp.shape[1], ir_warp.shape[0]), (vi.shape[1], vi.shape[0]))
        before, after = ncc_to_truth(ir_warp, ir, start), ncc_to_truth(ir_warp, ir, verdict.homography)
        change = "improved" if after > before + NCC_MARGIN else "worse" if after < before - NCC_MARGIN else "unchanged"
        rows.append({"set": "msrs", "pair": path.stem, "accepted": verdict.accepted,
                     "outcome": change if verdict.accepted else "refused", "would_have": change,
                     "ncc_before": before, "ncc_after": after, "score_before": verdict.score_before,
                     "score_after": verdict.score_after, "halves_px": max(verdict.halves_px, verdict.result_px),
                     "error_px": float("nan"), "vs_warp_px": float("nan"), "seconds": verdict.seconds,
                     "reason": verdict.reason})
    return rows


def tno_rows(data: Path, progress) -> list[dict]:
    folder = data / "tno"
    rows = []
    for path in progress(sorted((folder / "ir").glob("*.png")), "TNO known warp"):
        ir = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        vi = cv2.imread(str(folder / "vi" / path.name), cv2.IMREAD_COLOR)
        h, w = vi.shape[:2]
        warp = known_warp((w, h))
        vi_new = cv2.warpPerspective(vi, warp, (w, h))
        verdict = auto_calibrate(ir, vi_new)
        # the pair's own registration, fitted on the same colour content as the warped view shows
        shown = cv2.warpPerspective(cv2.warpPerspective(np.full((h, w), 255, np.uint8), warp, (w, h),
                                                        flags=cv2.INTER_NEAREST),
                                    np.linalg.inv(warp), (w, h), flags=cv2.INTER_NEAREST)
        reference = auto_align(ir, vi, rgb_mask=shown)  # the same fit auto_calibrate makes, unchecked
        error = corner_rms(warp @ reference.homography, verdict.homography, (w, h))
        outcome = "refused" if not verdict.accepted else "recovered" if error < SUCCESS_PX else "wrong"
        rows.append({"set": "tno", "pair": path.stem, "accepted": verdict.accepted, "outcome": outcome,
                     "would_have": "recovered" if error < SUCCESS_PX else "wrong", "ncc_before": float("nan"),
                     "ncc_after": float("nan"), "score_before": verdict.score_before, "score_after": verdict.score_after,
                     "halves_px": max(verdict.halves_px, verdict.result_px), "error_px": error,
                     "vs_warp_px": corner_rms(warp, verdict.homography, (w, h)), "seconds": verdict.seconds,
                     "reason": verdict.reason})
    return rows


def video_rows(data: Path, progress, frames: int) -> list[dict]:
    folder = data / "m3svd" / "videos"
    rows = []
    for path in progress(sorted((folder / "ir").glob("*.mp4")), "M3SVD videos"):
        pairs = video_pairs(path, folder / "vi" / path.name, frames)
        ir_frames = [p[0] for p in pairs]
        h, w = pairs[0][1].shape[:2]
        warp = known_warp((w, h))
        rgb_frames = [cv2.warpPerspective(p[1], warp, (w, h)) for p in pairs]
        middle = len(pairs) // 2
        for label, irs, rgbs in (("1 frame", ir_frames[middle:middle + 1], rgb_frames[middle:middle + 1]),
                                 (f"{len(pairs)} frames", ir_frames, rgb_frames)):
            verdict = auto_calibrate(irs, rgbs)
            error = corner_rms(warp, verdict.homography, (w, h))
            outcome = "refused" if not verdict.accepted else "recovered" if error < 2 * SUCCESS_PX else "wrong"
            rows.append({"set": f"video {label}", "pair": path.stem, "accepted": verdict.accepted, "outcome": outcome,
                         "would_have": "recovered" if error < 2 * SUCCESS_PX else "wrong", "ncc_before": float("nan"),
                         "ncc_after": float("nan"), "score_before": verdict.score_before,
                         "score_after": verdict.score_after, "halves_px": max(verdict.halves_px, verdict.result_px),
                         "error_px": error, "vs_warp_px": error, "seconds": verdict.seconds, "reason": verdict.reason})
    return rows


def count(rows: list[dict], key: str = "outcome") -> dict:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + 1
    return out


def save_figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"improved": "tab:green", "recovered": "tab:green", "unchanged": "tab:olive", "refused": "tab:gray",
               "worse": "tab:red", "wrong": "tab:red"}
    msrs = [r for r in rows if r["set"] == "msrs"]
    tno = [r for r in rows if r["set"] == "tno"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    ax = axes[0]
    for r in msrs:
        ax.scatter(r["ncc_before"], r["ncc_after"], c=colours[r["outcome"]], s=40,
                   marker="o" if r["accepted"] else "x")
        ax.annotate(r["pair"], (r["ncc_before"], r["ncc_after"]), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("NCC with the aligned thermal image, plain resize")
    ax.set_ylabel("NCC with the aligned thermal image, auto result")
    c = count(msrs)
    ax.set_title(f"MSRS ir_warp -> vi (o accepted, x refused; refused points show what the result would have done)\n"
                 f"{c.get('improved', 0)} improved, {c.get('unchanged', 0)} unchanged, {c.get('refused', 0)} refused, "
                 f"{c.get('worse', 0)} worse", fontsize=8)
    ax = axes[1]
    xs = np.arange(len(tno))
    ax.bar(xs, [max(r["error_px"], 0.01) for r in tno], color=[colours[r["outcome"]] for r in tno])
    ax.axhline(SUCCESS_PX, color="k", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xticks(xs, [r["pair"] for r in tno], fontsize=7)
    ax.set_ylabel("corner RMS vs. the applied warp (consistency), px")
    c = count(tno)
    ax.set_title(f"TNO, visible warped (3 deg, x1.05, 4% shift): green recovered, grey refused, red wrong\n"
                 f"{c.get('recovered', 0)} recovered, {c.get('refused', 0)} refused, {c.get('wrong', 0)} wrong "
                 f"(bar = what the result would have been)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


NOTES = [
    "- Before this work (ECC on gradient-magnitude maps, no checks) the same MSRS pairs gave 7 of 20 worse, "
    "accepted without a word, and TNO known warps were off by 170, 12, 6, 6 and 3 px on pairs 02, 05, 11, 17 "
    "and 21 (issue 14; those figures are against W alone, so they include TNO's own misregistration).",
    "- The thresholds of the checks (held-out gain 0.01, halves within 0.6 % of the diagonal, x/y ratio 10 %) "
    "were set while looking at these same pairs; they are not a held-out evaluation of the thresholds.",
    "- A refusal costs nothing but a retry with `points`, `checkerboard` or more frames; an accepted wrong "
    "result silently misregisters every fused frame, so the checks lean towards refusing.",
    "- The criterion for TNO compares two fits of the same method (on the warped and on the unwarped pair), "
    "so an error of about 1 px includes the reference fit's own error.",
    "- MSRS and TNO pairs are themselves registered only to a few pixels by this measure (the fit on an "
    "unwarped pair moves the corners by several pixels, consistently across its halves), which is why "
    "`vs W` is not the criterion.",
    "- Videos: on M3SVD 0117_1605 and 1230_1202 the one-frame and the 4-frame results both sit 5-6 px from W, "
    "with the half fits agreeing within 1-4 px, so the checks accept them. Either the fit is biased there or "
    "these pairs are not registered to < 1.2 px; by eye (thermal edges drawn on the colour frame of 0117_1605: "
    "lamp head, tree trunks) the fitted mapping aligns at least as well as the identity. Unresolved, so counted "
    "as wrong. More frames changed an accepted result by at most 0.6 px here; on the dense-smoke pair 0117_1620 "
    "one frame gave an implausible mapping (36 px off) and 4 frames one 3.3 px off, both refused.",
    "- The video rows were measured with commit 3aaea0e, where the half fits refined only the coarse candidate "
    "the first fit chose; the MSRS and TNO rows with the current code (each half picks among all candidates). "
    "Rerun `python bench/calibration_faults.py --only video` and `--from-parts` to bring them up to date.",
]


def write_page(rows: list[dict], doc: Path, figure: Path, seconds: float, command: str) -> None:
    msrs = [r for r in rows if r["set"] == "msrs"]
    tno = [r for r in rows if r["set"] == "tno"]
    videos = [r for r in rows if r["set"].startswith("video")]
    cm, ct = count(msrs), count(tno)
    lines = [
        "# Calibration you can trust: `calibration auto` on known faults",
        "",
        f"Generated by `{command}` ({seconds / 60:.1f} min of alignment on the shared 2-core CPU, busy with other "
        "jobs, so times are upper bounds). "
        "How `auto` fits and checks itself: [registration.md](registration.md#how-auto-checks-itself).",
        "",
        f"![MSRS and TNO outcomes]({figure.relative_to(doc.parent).as_posix()})",
        "",
        "## MSRS `ir_warp` -> `vi` (20 test pairs; the aligned `ir` is ground truth)",
        "",
        f"**{cm.get('improved', 0)} improved, {cm.get('unchanged', 0)} unchanged, {cm.get('refused', 0)} refused, "
        f"{cm.get('worse', 0)} accepted and worse.** Criterion: NCC between the aligned thermal image and the "
        f"thermal image put on the colour grid (plain resize, then the result); a change of more than "
        f"{NCC_MARGIN} either way counts. For a refused pair the table also says what the result would have done.",
        "",
        "| pair | outcome | NCC before | NCC after | held-out score | halves agree (px) | would have | why |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in msrs:
        lines.append(f"| {r['pair']} | {r['outcome']} | {r['ncc_before']:.3f} | {r['ncc_after']:.3f} | "
                     f"{r['score_before']:.3f} -> {r['score_after']:.3f} | {r['halves_px']:.1f} | {r['would_have']} | "
                     f"{r['reason']} |")
    recovered = ct.get("recovered", 0)
    lines += [
        "",
        "## TNO known warp (all 25 pairs; visible image rotated 3 deg, scaled 1.05, shifted 4 % of the width)",
        "",
        f"**{recovered} of {len(tno)} recovered within {SUCCESS_PX:g} px ({100 * recovered / max(1, len(tno)):.0f} %), "
        f"{ct.get('refused', 0)} refused, {ct.get('wrong', 0)} accepted and wrong.** Error: corner RMS between the "
        "result and W @ B, B the same method's estimate on the unwarped pair over the same colour content "
        "(TNO's pairs are several pixels off on many pairs, so W alone is not the truth; `vs W` shows that "
        "distance, which includes TNO's own misregistration).",
        "",
        "| pair | outcome | error (px) | vs W (px) | held-out score | halves agree (px) | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in tno:
        lines.append(f"| {r['pair']} | {r['outcome']} | {r['error_px']:.2f} | {r['vs_warp_px']:.1f} | "
                     f"{r['score_before']:.3f} -> {r['score_after']:.3f} | {r['halves_px']:.1f} | {r['reason']} |")
    if videos:
        lines += [
            "",
            "## Video pairs: one frame against many (M3SVD, registered to < 1.2 px; the same known warp on every visible frame)",
            "",
            "Error against W (the pairs' own registration is near identity, so 2 px is the success bar here).",
            "",
            "| video | frames | outcome | error vs W (px) | held-out score | halves agree (px) | time (s) | why |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in videos:
            lines.append(f"| {r['pair']} | {r['set'][6:]} | {r['outcome']} | {r['error_px']:.2f} | "
                         f"{r['score_before']:.3f} -> {r['score_after']:.3f} | {r['halves_px']:.1f} | "
                         f"{r['seconds']:.0f} | {r['reason']} |")
    lines += ["", "## Reading these numbers", "", *NOTES]
    doc.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/registration_results"))
    parser.add_argument("--doc", type=Path, default=Path("docs/reliability_calibration.md"))
    parser.add_argument("--video-frames", type=int, default=8, help="frames per video pair (0: skip the videos)")
    parser.add_argument("--only", choices=("msrs", "tno", "video"),
                        help="run one part and write calibration_faults_<part>.csv only (parts can run in parallel)")
    parser.add_argument("--from-parts", action="store_true",
                        help="write the CSV, figure and page from the three calibration_faults_<part>.csv")
    args = parser.parse_args(argv)
    if args.from_parts:
        rows = []
        for part in ("msrs", "tno", "video"):
            path = args.out / f"calibration_faults_{part}.csv"
            if path.is_file():
                rows += [_typed(r) for r in csv.DictReader(path.open())]
        return _finish(rows, args, None)
    from tqdm import tqdm

    cv2.setNumThreads(1)  # comparable timings on a shared machine
    data = shared_data_dir()
    if data is None:
        raise SystemExit("error: ../shared/data not found (or set IRVIS_DATA_DIR)")

    def progress(items, desc):
        return tqdm(items, desc=desc, unit="pair")

    t0 = time.perf_counter()
    rows = []
    if args.only in (None, "msrs"):
        rows += msrs_rows(data, progress)
    if args.only in (None, "tno"):
        rows += tno_rows(data, progress)
    if args.only in (None, "video") and args.video_frames > 0:
        rows += video_rows(data, progress, args.video_frames)
    if args.only:
        args.out.mkdir(parents=True, exist_ok=True)
        _write_csv(rows, args.out / f"calibration_faults_{args.only}.csv", time.perf_counter() - t0)
        return 0
    return _finish(rows, args, time.perf_counter() - t0)


def _write_csv(rows: list[dict], path: Path, seconds: float | None = None) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}" + (f" ({seconds / 60:.1f} min)" if seconds else ""))


def _typed(row: dict) -> dict:
    """A row read back from CSV with its numbers and flags typed again."""
    out = dict(row)
    out["accepted"] = row["accepted"] == "True"
    for key in ("ncc_before", "ncc_after", "score_before", "score_after", "halves_px", "error_px", "vs_warp_px",
                "seconds"):
        out[key] = float(row[key])
    return out


def _finish(rows: list[dict], args, seconds: float | None) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    _write_csv(rows, args.out / "calibration_faults.csv")
    for part in ("msrs", "tno"):
        part_rows = [r for r in rows if r["set"] == part]
        if part_rows:
            print(f"{part}: {count(part_rows)}")
    for r in rows:
        if r["set"].startswith("video"):
            print(f"{r['set']} {r['pair']}: {r['outcome']} {r['error_px']:.2f} px")
    figure = args.out / "calibration_faults.png"
    save_figure(rows, figure)
    total = seconds if seconds is not None else sum(r["seconds"] for r in rows)
    write_page(rows, args.doc, figure, total, "python bench/calibration_faults.py")
    print(f"wrote {figure} and {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
