"""The "Halos" and "Video" sections of docs/benchmarks.md, written from the saved halo and flicker figures.

    python -m bench.video_page --halo docs/images/bench_halo.json --flicker docs/images/bench_flicker.json \\
        --out docs/images/bench_video_all.md

The tables come from ``python -m bench.halo --markdown`` / ``python -m bench.flicker --markdown`` (re-rendered
here from their JSON), the sentences around them from the same figures, so the page stays true when the
weights change and the figures are re-measured. Pass the output to ``python -m bench --extra``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .flicker import markdown as flicker_markdown
from .halo import markdown as halo_markdown
from .report import write_text

REQUIRED = ("clip 0114_1611",)  # the gain-jump clip; every "video ..." sequence is required too


def _by(summary: list[dict], method: str, group: str) -> dict | None:
    return next((s for s in summary if s["method"] == method and s["group"] == group), None)


def halo_section(halo: dict) -> str:
    summ = halo["summary"]
    groups = list(dict.fromkeys(s["group"] for s in summ))
    lines = ["## Halos: real-time M2PN against the full network and the classical methods", "",
             "The measure (`engine/metrics/halo.py`): beside strong thermal edges, how much darker or brighter a "
             "ring of the fused image is than the region just beyond it, *beyond* the range the two sources show "
             "there (a fixed per-pixel mix of the sources scores 0, whatever its weights). Black lift: over pixels "
             "dark in both sources, how far the fused image sits above the brighter source.", "",
             halo_markdown(halo["rows"]).rstrip(), ""]
    verdicts = []
    for g in groups:
        rt, full, old = (_by(summ, m, g) for m in ("m2pn_rt", "m2pn", "m2pn_rt (residual)"))
        if rt and full:
            verdicts.append(f"{g} {rt['halo']:.2f} against {full['halo']:.2f}"
                            + (f" (earlier default {old['halo']:.2f})" if old else ""))
    if verdicts:
        worse = [g for g in groups if (_by(summ, "m2pn_rt", g) or {}).get("halo", 0) > (_by(summ, "m2pn", g) or {}).get("halo", 1e9)]
        lines += [f"`m2pn_rt` against the full network: {'; '.join(verdicts)} — "
                  + ("no worse on every group." if not worse else f"worse on {', '.join(worse)}."), ""]
    night_rt, night_full = _by(summ, "m2pn_rt", "MSRS night"), _by(summ, "m2pn", "MSRS night")
    if night_rt and night_full and night_rt["black_lift"] is not None and night_full["black_lift"] is not None:
        lines += [f"Where the halos came from (measured, see \"What we tried\"): the 120x90 network's own output has "
                  f"bands along strong edges, and the low-resolution residual that the earlier default added back "
                  f"carried them, upsampled, to the full frame — the dark band over the lakeside skyline and the rims "
                  f"round people at night. The two-guide fit was not their source; the residual is no longer added "
                  f"and the fit window is wider (radius 8). The lifted blacks on dark night scenes are the network's "
                  f"own: the full network lifts them by {night_full['black_lift']:+.1f} grey levels, `m2pn_rt` by "
                  f"{night_rt['black_lift']:+.1f} (mean grey {night_rt['mean_fused']:.0f} where the sources are "
                  f"{night_rt['mean_ir']:.0f} and {night_rt['mean_vi']:.0f}); that is left to the retrained network.", ""]
    lines += ["Crops side by side (lakeside skyline, camouflage, MSRS night 00024N; `python -m bench.halo`):", "",
              "![halo crops](images/bench_halo.png)", ""]
    return "\n".join(lines)


def video_section(rows: list[dict]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != "sources"))
    by = {(r["sequence"], r["method"], r["mode"]): r for r in rows}
    seqs = list(dict.fromkeys(r["sequence"] for r in rows))
    required = [s for s in seqs if s in REQUIRED or s.startswith("video ")]
    lines = ["## Video: flicker and motion lag, with and without the video mode", "",
             "The video mode (`engine/temporal.py`, on by default in the viewer for cameras, video files and "
             "replays, off for image folders): thermal gain jumps of the camera's AGC are estimated from matched "
             "grey-level quantiles of consecutive frames and undone (the correction fades out over about a "
             "second), and a motion-adaptive recursive filter averages the fused frames where neither source "
             "changed and shows the current frame where either did. With it `m2pn_rt` also streams: its network "
             "for frame t runs beside the rest of the pipeline, frame t is finished with frame t−1's mix "
             "proportions (every pixel is still frame t's). Measured with `python -m bench.flicker` on the three "
             "M3SVD clips and the first 150 frames of the five M3SVD videos.", "",
             flicker_markdown(rows, methods).rstrip(), ""]
    rt_on = [by[(s, "m2pn_rt", "on")] for s in required if (s, "m2pn_rt", "on") in by]
    if rt_on:
        worst = max(rt_on, key=lambda r: r["ratio_max"])
        lags = [r["lag"] for r in rt_on if r.get("lag") is not None]
        ok = worst["ratio_max"] <= 1.0
        lines += [f"With the video mode on, `m2pn_rt`'s change per frame on `0114_1611` and the five videos is "
                  f"{min(r['ratio_max'] for r in rt_on):.2f}-{worst['ratio_max']:.2f} of the larger source change "
                  f"({'at or below' if ok else 'above'} the sources' own; worst: {worst['sequence']}), and moving "
                  f"things lag by at most {max(lags):.3f} of a frame (share of the previous frame in what is "
                  f"shown where a source moved; there, what is shown correlates {min(r['corr_now'] for r in rt_on):.3f} "
                  f"or more with the current per-frame fusion and {max(r['corr_prev'] for r in rt_on):.3f} or less "
                  f"with the previous one)." if lags else "", ""]
    gain = by.get(("clip 0114_1611", "m2pn_rt", "on")), by.get(("clip 0114_1611", "m2pn_rt", "off"))
    if all(gain):
        lines += [f"The gain jumps of `0114_1611` (thermal change {gain[1]['ir']:.1f} grey levels per frame, against "
                  f"{gain[1]['vi']:.1f} for the visible) are absorbed: the fused change falls from "
                  f"{gain[1]['fused']:.2f} to {gain[0]['fused']:.2f} grey levels per frame. Two frames across its "
                  f"largest jump, and across the largest thermal change of the other two clips (IR, VIS, `m2pn_rt`, "
                  f"`m2pn_rt` + video mode):", "",
                  "![0114_1611 across a gain jump](images/flicker_0114_1611.png)", "",
                  "![0111_1716](images/flicker_0111_1716.png)", "",
                  "![0115_1831](images/flicker_0115_1831.png)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.video_page", description=__doc__.split("\n\n")[0])
    p.add_argument("--halo", type=Path, default=Path("docs/images/bench_halo.json"))
    p.add_argument("--flicker", type=Path, default=Path("docs/images/bench_flicker.json"))
    p.add_argument("--out", type=Path, default=Path("docs/images/bench_video_all.md"))
    args = p.parse_args(argv)
    missing = [str(f) for f in (args.halo, args.flicker) if not f.is_file()]
    if missing:
        print(f"error: {', '.join(missing)} not found; run python -m bench.halo / bench.flicker with --json first",
              file=sys.stderr)
        return 2
    text = halo_section(json.loads(args.halo.read_text())) + "\n" + video_section(json.loads(args.flicker.read_text()))
    write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
