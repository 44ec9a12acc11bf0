"""GPU rows of the benchmark and CPU/GPU agreement, for a machine with an NVIDIA GPU (run by bench/gpu.sh).

    python -m bench.gpu --out OUT_DIR [--frames 30] [--repeats 2]

1. **Agreement** of every GPU path with the CPU path (ONNX Runtime, float32) on real pairs (the first
   three MSRS test pairs, or the demo scene when the shared data is absent): the M2PN network at
   ``m2pn_rt``'s working size (120x90) and at 640x480, and the whole ``m2pn_rt`` output (8-bit levels).
   Backends: ``cuda`` fp32 and fp16, ``tensorrt`` fp16 and fp32 (engines built for the exact size).
2. **Speed** through the application's pipeline (``bench.speed``) for ``m2pn`` and ``m2pn_rt`` on each GPU
   backend at 640x480, 1280x720 and 1920x1080, with ``noop`` and ``gff`` as CPU references in the same run.

Writes ``agreement.json``, ``bench_gpu.json`` and ``gpu.md`` (both tables) into ``--out``. A backend that
cannot run (no torch-tensorrt, say) is a row with its reason, not a failure of the script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.backends import create_runner
from engine.errors import FusionError
from engine.m2pn.weights import load_frozen
from engine.paths import shared_data_dir
from engine.realtime.method import M2PNRealtimeMethod

from .report import speed_table, write_json, write_text
from .speed import BenchConfig, device_description, run_benchmark

GPU_BACKENDS = (("cuda", "fp32"), ("cuda", "fp16"), ("tensorrt", "fp16"), ("tensorrt", "fp32"))


def real_pairs(limit: int = 3) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(thermal grey, visible grey) float32 [0, 1] pairs at 640x480, and their names."""
    root = shared_data_dir()
    out = []
    if root is not None:
        for p in sorted((root / "msrs" / "test" / "ir").glob("*.png"))[:limit]:
            ir = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            vi = cv2.imread(str(root / "msrs" / "test" / "vi" / p.name), cv2.IMREAD_GRAYSCALE)
            if ir is not None and vi is not None:
                out.append((ir.astype(np.float32) / 255, vi.astype(np.float32) / 255, f"msrs {p.stem}"))
    if not out:
        from app.demo import open_demo_pair

        ir_src, rgb_src = open_demo_pair(640, 480, frames=1, realtime=False)
        ir_src.open(), rgb_src.open()
        ir, rgb = ir_src.read().image, rgb_src.read().image
        out.append((ir.astype(np.float32) / 255, cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255, "demo"))
    return out


def _network(runner, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x))[None, None]  # noqa: E731
    return runner(t(ir), t(vi))[0, 0].numpy()


def agreement(weights: Path | None) -> list[dict]:
    """|gpu - cpu| of the network at 120x90 and 640x480 and of m2pn_rt's 8-bit output, per GPU backend."""
    model, _, _ = load_frozen(weights, None)
    pairs = real_pairs()
    cpu = create_runner(model, "cpu", threads=None)
    cpu_rt = M2PNRealtimeMethod(model=model, backend="cpu")
    reference = {}
    for ir, vi, name in pairs:
        small = [cv2.resize(x, (120, 90), interpolation=cv2.INTER_AREA) for x in (ir, vi)]
        reference[name] = {"120x90": _network(cpu, *small), "640x480": _network(cpu, ir, vi),
                           "m2pn_rt": np.round(cpu_rt.fuse(ir, vi) * 255)}
    rows = []
    for backend, precision in GPU_BACKENDS:
        row = {"backend": backend, "precision": precision}
        try:
            t0 = time.perf_counter()
            runner = create_runner(model, backend, precision=precision, strict=True)
            rt = M2PNRealtimeMethod(model=model, backend="cpu", cpu_runtime="torch")
            rt._runner.close()
            rt._runner = runner  # m2pn_rt on this backend and precision
            row["build_s"] = round(time.perf_counter() - t0, 1)
            errs: dict[str, list[float]] = {"120x90": [], "640x480": [], "m2pn_rt": []}
            for ir, vi, name in pairs:
                small = [cv2.resize(x, (120, 90), interpolation=cv2.INTER_AREA) for x in (ir, vi)]
                got = {"120x90": _network(runner, *small), "640x480": _network(runner, ir, vi),
                       "m2pn_rt": np.round(rt.fuse(ir, vi) * 255)}
                for k, v in got.items():
                    errs[k].append(np.abs(v - reference[name][k]))
            for k, diffs in errs.items():
                row[f"max_{k}"] = float(max(d.max() for d in diffs))
                row[f"mean_{k}"] = float(np.mean([d.mean() for d in diffs]))
            row["runs"] = runner.choice.describe()
            runner.close()
        except (FusionError, RuntimeError, ImportError) as exc:
            row["error"] = str(exc).splitlines()[0][:300]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def agreement_md(rows: list[dict]) -> str:
    lines = ["| backend | precision | network 120x90 max / mean | network 640x480 max / mean | m2pn_rt 8-bit max / mean "
             "(levels) | build s |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['precision']} | not run: {r['error']} | | | |")
            continue
        cell = lambda k, d=4: f"{r[f'max_{k}']:.{d}f} / {r[f'mean_{k}']:.{d}f}"  # noqa: E731
        lines.append(f"| {r['backend']} | {r['precision']} | {cell('120x90')} | {cell('640x480')} | "
                     f"{cell('m2pn_rt', 1)} | {r['build_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: no CUDA device visible to PyTorch; bench.gpu needs an NVIDIA GPU", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows = agreement(args.weights)
    write_json(rows, args.out / "agreement.json")
    speed_rows = []
    for backend in ("cuda", "tensorrt"):
        if all("error" in r for r in rows if r["backend"] == backend):
            continue
        opts = {"backend": backend, **({"weights": args.weights} if args.weights else {})}
        cfg = BenchConfig(methods=["m2pn", "m2pn_rt", "gff"], resolutions=[(640, 480), (1280, 720), (1920, 1080)],
                          frames=args.frames, slow_frames=args.frames, warmup=3, repeats=args.repeats,
                          method_options={"m2pn": opts, "m2pn_rt": opts}, memory=False)
        for r in run_benchmark(cfg, lambda msg: print(msg, flush=True)):
            speed_rows.append({**r, "requested_backend": backend})
    write_json(speed_rows, args.out / "bench_gpu.json")
    page = [f"# GPU benchmark ({device_description()}; {torch.cuda.get_device_name(0)})", "",
            "## CPU/GPU agreement (|GPU − CPU|; network output in [0, 1], m2pn_rt in 8-bit levels)", "",
            agreement_md(rows), "## Speed through the pipeline", "", speed_table(speed_rows) if speed_rows else "no GPU backend ran"]
    write_text(args.out / "gpu.md", "\n".join(page) + "\n")
    print("\n".join(page))
    return 0


if __name__ == "__main__":
    sys.exit(main())
