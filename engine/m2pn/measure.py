"""Size and cost of an M2PN: parameters, FLOPs at 256x256 and CPU milliseconds per 640x480 frame.

    python -m engine.m2pn.measure [--weights PATH | --train-config YAML] [--json OUT] [--threads 2]

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``, which counts **2 FLOPs per multiply-add**
(a k x k convolution costs 2 * k * k * C_in * C_out * H * W) and counts only matrix-like operators
(convolutions, linear layers, matmuls); element-wise work (activations, normalisation, softmax, Tanh) is
not counted. ``MACs = FLOPs / 2``. The paper quotes 0.97 M parameters and 15.6 GFLOPs for a 256x256
pair; comparing our count with it in both conventions tells which one the paper used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..errors import FusionError
from .config import M2PNConfig
from .model import M2PN
from .weights import DEFAULT_WEIGHTS, load_model

PAPER_PARAMETERS = 0.97e6
PAPER_GFLOPS_256 = 15.6


def count_flops(model: M2PN, height: int = 256, width: int = 256) -> tuple[int, dict[str, int]]:
    """FLOPs (2 per multiply-add) of one forward pass on a (1, 1, H, W) IR/VIS pair, and per top-level module."""
    ir = torch.rand(1, 1, height, width)
    vi = torch.rand(1, 1, height, width)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.eval()(ir, vi)
    # keys look like "M2PN.encoder" or "M2PN.pgms.0.mgf"; a ModuleList ("pgms") is never called itself, so
    # each top-level part is the sum of its shallowest entries (deeper ones are already included in those)
    entries = [(name.split(".")[1:], int(sum(ops.values()))) for name, ops in counter.get_flop_counts().items()]
    entries = [(parts, flops) for parts, flops in entries if parts]
    per_module: dict[str, int] = {}
    for top in dict.fromkeys(parts[0] for parts, _ in entries):
        depth = min(len(parts) for parts, _ in entries if parts[0] == top)
        per_module[top] = sum(f for parts, f in entries if parts[0] == top and len(parts) == depth)
    return int(counter.get_total_flops()), per_module


def time_cpu_ms(model: M2PN, height: int = 480, width: int = 640, threads: int = 2,
                warmup: int = 2, repeats: int = 7) -> dict[str, float]:
    """Median / min wall-clock milliseconds of one (1, 1, H, W) forward pass on the CPU with ``threads``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ir, vi = torch.rand(1, 1, height, width), torch.rand(1, 1, height, width)
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeats):
                start = time.perf_counter()
                model.eval()(ir, vi)
                if i >= warmup:  # the first passes pay for allocation and oneDNN kernel selection
                    times.append((time.perf_counter() - start) * 1000.0)
    finally:
        torch.set_num_threads(previous)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeats": repeats, "threads": threads}


def measure(model: M2PN, threads: int = 2, repeats: int = 7, timing: bool = True) -> dict[str, Any]:
    """All figures for ``model`` as a JSON-ready dict (see the module docstring for the conventions)."""
    params = model.count_parameters()
    flops, per_module = count_flops(model, 256, 256)
    gflops = flops / 1e9
    result: dict[str, Any] = {
        "config": model.config.to_dict(),
        "parameters": params,
        "parameters_vs_paper": params / PAPER_PARAMETERS,
        "flops_256": flops,
        "gflops_256": gflops,
        "gmacs_256": gflops / 2,
        "flop_convention": "FlopCounterMode: 2 FLOPs per multiply-add; element-wise ops not counted",
        "flops_by_module_256": per_module,
        "paper": {"parameters": PAPER_PARAMETERS, "gflops_256": PAPER_GFLOPS_256},
        # which reading of the paper's 15.6 "GFLOPs" is nearer ours (ratios in log space)
        "paper_gflops_over_our_gflops": PAPER_GFLOPS_256 / gflops,
        "paper_gflops_over_our_gmacs": PAPER_GFLOPS_256 / (gflops / 2),
    }
    if timing:
        result["cpu_640x480"] = time_cpu_ms(model, 480, 640, threads=threads, repeats=repeats)
    return result


def load_for_measure(weights: str | None, train_config: str | None) -> tuple[M2PN, str]:
    """The model to measure and a line saying where it came from."""
    if weights:
        model, _ = load_model(weights)
        return model, f"weights {weights}"
    if train_config:
        import yaml  # only needed for this option

        path = Path(train_config)
        if not path.is_file():
            raise FusionError(f"training config not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        return M2PN(M2PNConfig.from_dict(data.get("model") or {})).eval(), f"random init, model section of {path}"
    if DEFAULT_WEIGHTS.is_file():
        model, _ = load_model(DEFAULT_WEIGHTS)
        return model, f"weights {DEFAULT_WEIGHTS}"
    return M2PN(M2PNConfig()).eval(), "random init, paper-sized default M2PNConfig (no weights file found)"


def format_report(source: str, r: dict[str, Any]) -> str:
    lines = [
        f"M2PN measurements ({source})",
        f"  parameters        {r['parameters']:,}  ({r['parameters_vs_paper']:.2f} x the paper's 0.97 M)",
        f"  FLOPs @256x256    {r['gflops_256']:.2f} GFLOPs = {r['gmacs_256']:.2f} GMACs  (FlopCounterMode: 2 FLOPs per MAC)",
        f"  paper 15.6 GFLOPs is {r['paper_gflops_over_our_gflops']:.2f} x our FLOPs and "
        f"{r['paper_gflops_over_our_gmacs']:.2f} x our MACs",
        "  FLOPs by module:  " + ", ".join(f"{k} {v / 1e9:.2f}G" for k, v in r["flops_by_module_256"].items()),
    ]
    if "cpu_640x480" in r:
        t = r["cpu_640x480"]
        lines.append(f"  CPU 640x480       {t['median_ms']:.0f} ms median, {t['min_ms']:.0f} ms min "
                     f"({t['threads']} threads, {t['repeats']} runs after warm-up)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.m2pn.measure", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", help="weights file (default engine/weights/m2pn.pt, else a random paper-sized model)")
    source.add_argument("--train-config", help="measure a random model with the 'model:' section of this YAML")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the timing (default 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs after 2 warm-up runs (default 7)")
    parser.add_argument("--no-timing", action="store_true", help="skip the CPU timing")
    args = parser.parse_args(argv)
    try:
        model, where = load_for_measure(args.weights, args.train_config)
        result = measure(model, threads=args.threads, repeats=args.repeats, timing=not args.no_timing)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result["source"] = where
    print(format_report(where, result))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
