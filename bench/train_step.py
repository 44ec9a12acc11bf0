"""Seconds per M2PN training step, before and after the step was made cheaper, measured in one run.

    python bench/train_step.py [--config configs/train_m2pn_v2_cpu.yaml] [--threads 1] [--rounds 5] [--json OUT]

"before" is the step as the first weights were trained: float32 forward pass and the 2-D 11x11 SSIM window
(five 2-D convolutions per SSIM). "after" is the step as ``engine.train`` runs it now: bf16 autocast of the
forward pass and the separable SSIM that filters all eight moment maps of both SSIM terms in one grouped
pass. Same widths, same batch (16 x 128 x 128), same machine; the variants are interleaved round by round so
that the machine's load falls on both alike, and the ratio of the medians is the figure to quote.
A speed figure, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine.m2pn import M2PN, M2PNConfig  # noqa: E402
from engine.m2pn import losses  # noqa: E402
from engine.quality import build_quality_evaluator  # noqa: E402


def ssim_2d_window(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The earlier SSIM: a 2-D Gaussian window, one convolution per moment. (B,1,H,W) x2 -> (B,)."""
    coords = torch.arange(window, dtype=x.dtype) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :])[None, None]
    pad = window // 2
    xp, yp = (F.pad(t, (pad,) * 4, mode="reflect") for t in (x, y))
    mu_x, mu_y = F.conv2d(xp, w), F.conv2d(yp, w)
    var_x = F.conv2d(xp * xp, w) - mu_x**2
    var_y = F.conv2d(yp * yp, w) - mu_y**2
    cov = F.conv2d(xp * yp, w) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2, 3))


@contextlib.contextmanager
def earlier_ssim():
    """Run the loss with the earlier SSIM (for the "before" figure only)."""
    current = losses.ssim_to_both
    losses.ssim_to_both = lambda f, a, b, window=11, sigma=1.5: (ssim_2d_window(f, a, window, sigma),
                                                                  ssim_2d_window(f, b, window, sigma))
    try:
        yield
    finally:
        losses.ssim_to_both = current


def model_config(path: Path) -> M2PNConfig:
    import yaml

    return M2PNConfig.from_dict((yaml.safe_load(path.read_text()) or {}).get("model") or {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/train_m2pn_v2_cpu.yaml"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = M2PN(model_config(args.config)).train()
    model.set_quality_evaluator(build_quality_evaluator("noref"))
    objective = losses.M2PNLoss(losses.LossConfig())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    ir, vi = torch.rand(16, 1, 128, 128), torch.rand(16, 1, 128, 128)

    def step(variant: str) -> float:
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if variant == "after" else contextlib.nullcontext())
        ssim_impl = earlier_ssim() if variant == "before" else contextlib.nullcontext()
        start = time.perf_counter()
        with ssim_impl:
            with autocast:
                out = model(ir, vi)
            out.fused = out.fused.float()
            total = objective(out, ir, vi, model).total
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
        return time.perf_counter() - start

    variants = ("before", "after")
    for v in variants:  # warm-up: allocator, oneDNN kernels
        step(v)
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants:
            times[v].append(step(v))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{v} {times[v][-1]:.2f} s" for v in variants), flush=True)
    medians = {v: statistics.median(times[v]) for v in variants}
    result = {"threads": args.threads, "batch": "16 x 1 x 128 x 128", "parameters": model.count_parameters(),
              "median_s_per_step": medians, "speedup": medians["before"] / medians["after"], "all_s": times}
    print(json.dumps({k: result[k] for k in ("threads", "parameters", "median_s_per_step", "speedup")}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
