"""Flicker and motion lag of fused video, with and without the video mode (``engine.temporal.VideoMode``).

    python -m bench.flicker --json docs/images/bench_flicker.json --markdown docs/images/bench_flicker.md
    python -m bench.flicker --methods m2pn_rt average --video-frames 30        # quick

Sequences: the three 20-frame M3SVD clips (``../shared/data/m3svd/clips``, lossless PNG; ``0114_1611`` has
thermal gain jumps) and the first ``--video-frames`` frames of the five M3SVD videos. Every frame goes
through ``FusionEngine`` as in the application (thermal uint8 grey, visible uint8 BGR); "video mode on"
runs ``VideoMode.stabilize_thermal`` before and ``VideoMode.filter`` after it, as the pipeline does.
Figures (``engine.metrics.flicker``): the fused video's mean frame-to-frame change divided by the mean
(``/mean``) and by the larger (``/max``) of the two sources' changes; ``lag``: share of the previous
frame in what is shown where a source moved (0 = none), against the per-frame fusion of the same
(gain-stabilised) thermal frames, so an absorbed gain jump does not count as lag. Side-by-side frames go to ``--png-dir``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from engine import FusionEngine
from engine.errors import FusionError
from engine.metrics.flicker import flicker, motion_lag
from engine.paths import shared_data_dir

from .report import write_json, write_text
from engine.temporal import VideoMode

DEFAULT_METHODS = ("m2pn_rt", "average", "max", "laplacian", "gff", "tif")


def clip_sequences(root: Path) -> dict[str, tuple[list[np.ndarray], list[np.ndarray]]]:
    """``clips/<name>/{ir,vi}/*.png`` -> name: (thermal grey frames, visible BGR frames)."""
    out = {}
    for clip in sorted(p for p in (root / "clips").glob("*") if (p / "ir").is_dir()):
        names = sorted(f.name for f in (clip / "ir").glob("*.png"))
        ir = [cv2.imread(str(clip / "ir" / n), cv2.IMREAD_GRAYSCALE) for n in names]
        vi = [cv2.imread(str(clip / "vi" / n), cv2.IMREAD_COLOR) for n in names]
        out[f"clip {clip.name}"] = (ir, vi)
    return out


def read_video(path: Path, frames: int, gray: bool) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < frames:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if gray else frame)
    cap.release()
    return out


def video_sequences(root: Path, frames: int) -> dict[str, tuple[list[np.ndarray], list[np.ndarray]]]:
    out = {}
    for ir_path in sorted((root / "videos" / "ir").glob("*.mp4")):
        ir = read_video(ir_path, frames, True)
        vi = read_video(root / "videos" / "vi" / ir_path.name, frames, False)
        n = min(len(ir), len(vi))
        out[f"video {ir_path.stem}"] = (ir[:n], vi[:n])
    return out


def fuse_sequence(engine: FusionEngine, ir: list[np.ndarray], vi: list[np.ndarray], video: VideoMode | None
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(fused frames, thermal frames as fused): with ``video``, the thermal is the gain-stabilised one.

    As in the pipeline, the video mode also switches a method's streaming on (``m2pn_rt``: its network
    overlaps the next frame, with one-frame-old mix proportions).
    """
    set_streaming = getattr(engine.method, "set_streaming", None)
    if set_streaming is not None:
        set_streaming(video is not None)
    if video is None:
        return [engine.fuse(i, v) for i, v in zip(ir, vi)], list(ir)
    video.reset()
    fused, used = [], []
    for i, v in zip(ir, vi):
        i = video.stabilize_thermal(i, v)
        used.append(i)
        fused.append(video.filter(engine.fuse(i, v)))
    return fused, used


def run(sequences: dict, methods: list[str]) -> tuple[list[dict], dict]:
    """Rows (sequence, method, mode, figures) and the fused frames kept for the pictures."""
    rows, keep = [], {}
    total = len(sequences) * len(methods) * 2
    with tqdm(total=total, desc="flicker", unit="run") as bar:
        for seq, (ir, vi) in sequences.items():
            src = flicker(vi, ir, vi)  # the sources' own figures
            rows.append({"sequence": seq, "method": "sources", "mode": "-", "frames": len(ir),
                         "ir_change": src["ir"], "vi_change": src["vi"]})
            for method in methods:
                engine = FusionEngine(method)
                for mode in ("off", "on"):
                    bar.set_postfix_str(f"{seq} {method} video mode {mode}")
                    fused, used_ir = fuse_sequence(engine, ir, vi, VideoMode() if mode == "on" else None)
                    figures = flicker(fused, ir, vi)
                    # Lag of the temporal filter alone: against the per-frame fusion of the same (stabilised)
                    # thermal frames, so an absorbed gain jump does not count as lag.
                    if mode == "on" and hasattr(engine.method, "set_streaming"):
                        engine.method.set_streaming(False)
                    per_frame = fused if mode == "off" else [engine.fuse(i, v) for i, v in zip(used_ir, vi)]
                    lag = motion_lag(fused, per_frame, used_ir, vi)
                    rows.append({"sequence": seq, "method": method, "mode": mode, "frames": len(ir), **figures, **lag})
                    keep[(seq, method, mode)] = fused
                    bar.update(1)
                engine.close()
    return rows, keep


def _f(v, d=2) -> str:
    return "—" if v is None else f"{v:.{d}f}"


def markdown(rows: list[dict], methods: list[str]) -> str:
    """One table per form: rows = sequences, columns = methods (video mode off / on)."""
    seqs = list(dict.fromkeys(r["sequence"] for r in rows))
    by = {(r["sequence"], r["method"], r["mode"]): r for r in rows}
    out = []
    for key, title in (("ratio_max", "fused change / the larger source change"),
                       ("ratio_mean", "fused change / the mean of the two source changes")):
        out += [f"**Flicker, {title}** (off → on = video mode off → on; lower is steadier):", "",
                "| sequence | frames | IR change | VIS change | " + " | ".join(methods) + " |",
                "|---|---:|---:|---:|" + "---|" * len(methods)]
        for s in seqs:
            src = by[(s, "sources", "-")]
            cells = []
            for m in methods:
                off, on = by.get((s, m, "off")), by.get((s, m, "on"))
                cells.append(f"{_f(off and off[key])} → {_f(on and on[key])}")
            out.append(f"| {s} | {src['frames']} | {src['ir_change']:.2f} | {src['vi_change']:.2f} | "
                       + " | ".join(cells) + " |")
        out.append("")
    out += ["**Motion lag with the video mode on** (share of the previous frame where a source moved by more "
            "than 10 grey levels; 0 = no lag; correlation with the current / previous per-frame fusion there):", "",
            "| sequence | moving pixels | " + " | ".join(methods) + " |", "|---|---:|" + "---|" * len(methods)]
    for s in seqs:
        cells, share = [], None
        for m in methods:
            on = by.get((s, m, "on"))
            if on is None:
                cells.append("—")
                continue
            share = on["motion_pixels"]
            cells.append(f"{_f(on['lag'], 3)} ({_f(on['corr_now'], 3)} / {_f(on['corr_prev'], 3)})")
        out.append(f"| {s} | {_f(share and 100 * share, 1)} % | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _tile(img: np.ndarray, label: str, height: int = 240) -> np.ndarray:
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    img = cv2.resize(img, (round(img.shape[1] * height / img.shape[0]), height), interpolation=cv2.INTER_AREA)
    cv2.putText(img, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 255, 255), 2, cv2.LINE_AA)
    return img


def write_pictures(sequences: dict, keep: dict, method: str, out_dir: Path) -> list[Path]:
    """Two consecutive frames of each clip across its largest thermal change: IR, VIS, method off, on."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for seq, (ir, vi) in sequences.items():
        if not seq.startswith("clip") or (seq, method, "on") not in keep:
            continue
        jumps = [np.abs(ir[t].astype(np.float32) - ir[t - 1]).mean() for t in range(1, len(ir))]
        t = 1 + int(np.argmax(jumps))
        rows = []
        for k in (t - 1, t):
            rows.append(np.concatenate([_tile(ir[k], f"IR frame {k}"), _tile(vi[k], "VIS"),
                                        _tile(keep[(seq, method, "off")][k], f"{method}"),
                                        _tile(keep[(seq, method, "on")][k], f"{method} + video mode")], axis=1))
        path = out_dir / f"flicker_{seq.split()[-1]}.png"
        cv2.imwrite(str(path), np.concatenate(rows, axis=0))
        written.append(path)
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.flicker", description=__doc__.split("\n\n")[0])
    root = shared_data_dir() / "m3svd" if shared_data_dir() else None
    p.add_argument("--data", type=Path, default=root, help="M3SVD folder with clips/ and videos/")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    p.add_argument("--video-frames", type=int, default=150, help="first N frames of each video (default 150)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--markdown", type=Path, default=None)
    p.add_argument("--png-dir", type=Path, default=Path("docs/images"), help="side-by-side frames (default docs/images)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data is None or not args.data.is_dir():
        print("error: the M3SVD data (../shared/data/m3svd) is not present; pass --data", file=sys.stderr)
        return 2
    sequences = {**clip_sequences(args.data), **video_sequences(args.data, args.video_frames)}
    if not sequences:
        print(f"error: no clips or videos under {args.data}", file=sys.stderr)
        return 2
    try:
        rows, keep = run(sequences, list(args.methods))
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = markdown(rows, list(args.methods))
    print(table)
    if args.png_dir:
        for path in write_pictures(sequences, keep, args.methods[0], args.png_dir):
            print(f"wrote {path}")
    if args.json:
        write_json(rows, args.json)
    if args.markdown:
        write_text(args.markdown, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
