"""Halo and black-lift of every method on real footage (``engine.metrics.halo``), with crops side by side.

    python -m bench.halo --json docs/images/bench_halo.json --markdown docs/images/bench_halo.md --png docs/images/bench_halo.png

Scenes: the M3SVD lakeside video (``0113_1714``, frames 60 and 300: the skyline against the sky), the
camouflage clip (``clips/0114_1611``, frames 1 and 5: a person crouching in bushes) and the dark night
pairs of the MSRS test set (names ending in N). ``m2pn_rt (residual)`` is the earlier default (radius 4,
eps 1e-4, low-resolution residual added back), kept as a row to show where the halos came from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from engine import FusionEngine, available_methods
from engine.errors import FusionError
from engine.metrics.halo import halo_scores
from engine.paths import shared_data_dir

from .report import write_json, write_text

DEFAULT_METHODS = ("m2pn", "m2pn_rt", "m2pn_rt (residual)", "egmt", "average", "max", "laplacian", "gff", "tif")
#: extra rows: label -> (registered method, options)
VARIANTS = {"m2pn_rt (residual)": ("m2pn_rt", {"radius": 4, "eps": 1e-4, "residual": True})}
#: crops shown side by side (scene, y0, y1, x0, x1) at 640x480
TILE_WIDTH, TILES_PER_LINE = 300, 5
CROPS = (("lakeside 60", 150, 250, 260, 640), ("camouflage 1", 150, 330, 300, 520), ("night 00024N", 150, 350, 120, 420))


def video_frame(path: Path, index: int) -> np.ndarray | None:
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    return frame if ok else None


def load_scenes(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """name -> (thermal grey uint8, visible BGR uint8, group)."""
    scenes = {}
    m3 = root / "m3svd"
    for idx in (60, 300):
        ir = video_frame(m3 / "videos" / "ir" / "0113_1714.mp4", idx)
        vi = video_frame(m3 / "videos" / "vi" / "0113_1714.mp4", idx)
        if ir is not None and vi is not None:
            scenes[f"lakeside {idx}"] = (cv2.cvtColor(ir, cv2.COLOR_BGR2GRAY), vi, "lakeside")
    for idx in (1, 5):
        clip = m3 / "clips" / "0114_1611"
        ir = cv2.imread(str(clip / "ir" / f"{idx:04d}.png"), cv2.IMREAD_GRAYSCALE)
        vi = cv2.imread(str(clip / "vi" / f"{idx:04d}.png"), cv2.IMREAD_COLOR)
        if ir is not None and vi is not None:
            scenes[f"camouflage {idx}"] = (ir, vi, "camouflage")
    for p in sorted((root / "msrs" / "test" / "ir").glob("*N.png")):
        ir = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        vi = cv2.imread(str(root / "msrs" / "test" / "vi" / p.name), cv2.IMREAD_COLOR)
        if ir is not None and vi is not None:
            scenes[f"night {p.stem}"] = (ir, vi, "MSRS night")
    return scenes


def build(label: str) -> FusionEngine:
    name, options = VARIANTS.get(label, (label, {}))
    return FusionEngine(name, **options)


def run(scenes: dict, methods: list[str]) -> tuple[list[dict], dict]:
    rows, images = [], {}
    for label in tqdm(methods, desc="halo", unit="method"):
        try:
            engine = build(label)
        except FusionError as exc:
            print(f"warning: {label} skipped: {exc}", file=sys.stderr)
            continue
        for scene, (ir, vi, group) in scenes.items():
            fused = engine.fuse(ir, vi)
            gray = cv2.cvtColor(fused, cv2.COLOR_BGR2GRAY) if fused.ndim == 3 else fused
            vi_gray = cv2.cvtColor(vi, cv2.COLOR_BGR2GRAY)
            s = halo_scores(ir, vi_gray, gray)
            rows.append({"method": label, "scene": scene, "group": group, **s.as_dict(),
                         "mean_fused": float(gray.mean()), "mean_ir": float(ir.mean()), "mean_vi": float(vi_gray.mean())})
            images[(label, scene)] = gray
        engine.close()
    return rows, images


def summary(rows: list[dict]) -> list[dict]:
    """Mean per (method, group)."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        for group in dict.fromkeys(r["group"] for r in rows):
            sel = [r for r in rows if r["method"] == method and r["group"] == group]
            if not sel:
                continue
            lifts = [r["black_lift"] for r in sel if r["black_lift"] is not None]
            out.append({"method": method, "group": group, "n": len(sel),
                        **{k: float(np.mean([r[k] for r in sel])) for k in ("halo", "halo_dark", "halo_bright", "mean_fused",
                                                                              "mean_ir", "mean_vi")},
                        "black_lift": float(np.mean(lifts)) if lifts else None})
    return out


def markdown(rows: list[dict]) -> str:
    summ = summary(rows)
    groups = list(dict.fromkeys(s["group"] for s in summ))
    methods = list(dict.fromkeys(s["method"] for s in summ))
    by = {(s["method"], s["group"]): s for s in summ}
    counts = ", ".join(f"{g}: {next(s['n'] for s in summ if s['group'] == g)} frames" for g in groups)
    lines = [f"Halo measure (grey levels; ring darkening + brightening beside strong thermal edges beyond what "
             f"either source shows; lower is better; {counts}), and in brackets dark / bright parts:", "",
             "| method | " + " | ".join(groups) + " | black lift, MSRS night (grey levels) | mean grey, MSRS night |",
             "|---|" + "---:|" * len(groups) + "---:|---:|"]
    for m in methods:
        cells = []
        for g in groups:
            s = by.get((m, g))
            cells.append("—" if s is None else f"{s['halo']:.2f} ({s['halo_dark']:.2f} / {s['halo_bright']:.2f})")
        night = by.get((m, "MSRS night"))
        lift = "—" if not night or night["black_lift"] is None else f"{night['black_lift']:+.1f}"
        grey = "—" if not night else f"{night['mean_fused']:.1f} (IR {night['mean_ir']:.1f}, VIS {night['mean_vi']:.1f})"
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {lift} | {grey} |")
    return "\n".join(lines) + "\n"


def write_png(scenes: dict, images: dict, methods: list[str], path: Path) -> None:
    """One row per crop: IR | VIS | each method, labelled."""
    rows = []
    for scene, y0, y1, x0, x1 in CROPS:
        if scene not in scenes:
            continue
        ir, vi, _ = scenes[scene]
        tiles = [("IR", ir), ("VIS", cv2.cvtColor(vi, cv2.COLOR_BGR2GRAY))]
        tiles += [(m, images[(m, scene)]) for m in methods if (m, scene) in images]
        row = []
        for label, img in tiles:
            crop = cv2.cvtColor(np.ascontiguousarray(img[y0:y1, x0:x1]), cv2.COLOR_GRAY2BGR)
            crop = cv2.resize(crop, (TILE_WIDTH, round(crop.shape[0] * TILE_WIDTH / crop.shape[1])),
                              interpolation=cv2.INTER_AREA if crop.shape[1] > TILE_WIDTH else cv2.INTER_NEAREST)
            cv2.putText(crop, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1, cv2.LINE_AA)
            row.append(np.pad(crop, ((0, 3), (0, 3), (0, 0))))
        rows.append(row)
    if not rows:
        return
    lines = []
    for row in rows:  # each scene on lines of TILES_PER_LINE tiles
        for i in range(0, len(row), TILES_PER_LINE):
            part = row[i:i + TILES_PER_LINE]
            part += [np.zeros_like(part[0])] * (TILES_PER_LINE - len(part))
            lines.append(np.concatenate(part, axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate(lines, axis=0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.halo", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder (../shared/data)")
    p.add_argument("--methods", nargs="+", default=None, help="default: " + " ".join(DEFAULT_METHODS))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--markdown", type=Path, default=None)
    p.add_argument("--png", type=Path, default=Path("docs/images/bench_halo.png"))
    args = p.parse_args(argv)
    if args.data is None or not Path(args.data).is_dir():
        print("error: the shared data folder (../shared/data) is not present; pass --data", file=sys.stderr)
        return 2
    known = available_methods()
    methods = args.methods or [m for m in DEFAULT_METHODS if m in known or m in VARIANTS]
    scenes = load_scenes(Path(args.data))
    if not scenes:
        print(f"error: none of the halo scenes were found under {args.data}", file=sys.stderr)
        return 2
    rows, images = run(scenes, methods)
    table = markdown(rows)
    print(table)
    if args.png:
        write_png(scenes, images, [m for m in methods if m != "max"], args.png)
    if args.json:
        write_json({"rows": rows, "summary": summary(rows)}, args.json)
    if args.markdown:
        write_text(args.markdown, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
