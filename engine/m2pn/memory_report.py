"""How the memory bank of trained weights is used: ``python -m engine.m2pn.memory_report [--weights PATH]``.

On validation patches of RoadScene (the pairs the training held out) it reports how alike the instance
features ``Theta_f`` are (pairwise cosine), which slots retrieval picks (Eq. 2), how much softmax weight
the top slot takes, and how the training writes (Eq. 5) were spread over the slots (``slot_updates``).
A bank whose writes and retrievals all go to one slot acts as one learned prompt, not as a memory.

``--tno-effect`` also fuses the TNO pairs twice, once with normal retrieval and once with the retrieved
prompt replaced by the mean of the stored experiences, and reports the change of the nine metrics: the
memory earns its place only if that change is measurable.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn.functional as F

from ..errors import FusionError
from ..paths import shared_data_dir
from .model import M2PN
from .weights import DEFAULT_WEIGHTS, load_model


@torch.no_grad()
def memory_usage(model: M2PN, ir: torch.Tensor, vi: torch.Tensor) -> dict:
    """Statistics of the bank for a batch of pairs.

    Args:
        model: M2PN with prompts and DMB enabled (eval mode is set here; nothing is written).
        ir, vi: (B, 1, H, W) float32 in [0, 1], B >= 2.

    Returns:
        dict with ``theta_f_cosine_mean/min`` (pairwise, off-diagonal), ``retrieved_slots`` (sorted argmax
        slots), ``top_slot_weight_mean`` (softmax weight of the best slot), ``slots_written`` and
        ``writes`` (from the training counters).
    """
    if ir.shape[0] < 2:
        raise FusionError("memory_usage needs at least 2 pairs")
    model.eval()
    out = model(ir, vi)
    if out.theta_f is None or out.similarity is None:
        raise FusionError("this model has no memory bank (use_dmb or use_prompts is off)")
    theta = F.normalize(out.theta_f, dim=1)
    cos = theta @ theta.T
    off = cos[~torch.eye(cos.shape[0], dtype=torch.bool)]
    dmb = model.dmb
    weights = dmb.last_weights if dmb.last_weights is not None else (out.similarity / dmb.temperature).softmax(dim=1)
    updates = dmb.slot_updates
    held = dmb.slot_written if dmb.key_mode == "standardized" else updates > 0
    top = weights.argmax(dim=1)
    return {"pairs": int(ir.shape[0]), "key_mode": dmb.key_mode,
            "theta_f_cosine_mean": float(off.mean()), "theta_f_cosine_min": float(off.min()),
            "retrieved_slots": sorted({int(j) for j in top}), "distinct_top_slots": len({int(j) for j in top}),
            "top_slot_weight_mean": float(weights.max(dim=1).values.mean()),
            "slots_written": int(held.sum()), "writes": int(updates.sum()), "slots": int(updates.numel()),
            "largest_slot_share_of_writes": float(updates.max() / updates.sum()) if int(updates.sum()) else 0.0}


def mean_prompt_effect(weights: str, data, limit: int | None = None) -> dict:
    """Fuse the pairs under ``data`` with normal retrieval and with the retrieved prompt replaced by the mean
    of the stored experiences; return the nine metrics of both and the mean absolute pixel change (0..255)."""
    import numpy as np

    from ..evaluate import fused_gray_levels, load_pairs
    from ..fusion_engine import FusionEngine
    from ..metrics import compute_all
    from ..pairwise import PAIRWISE_METRICS
    from .method import M2PNMethod

    problems: list[str] = []
    pairs = load_pairs(data, limit, problems)
    results, fused = {}, {}
    for mode in ("retrieved", "mean"):
        model, _ = load_model(weights)
        model.dmb.retrieval_override = "mean" if mode == "mean" else None
        # no graph cache: both runs have the same weights, and a cached graph would ignore the override
        engine = FusionEngine(M2PNMethod(model=model, backend="cpu", cache_dir=False))
        scores, images = [], []
        with engine:
            for pair in pairs:
                image = fused_gray_levels(engine.fuse(pair.ir, pair.vi))
                images.append(image)
                scores.append(compute_all(pair.ir_gray, pair.vi_gray, image))
        results[mode] = {m: float(np.mean([s[m] for s in scores])) for m in PAIRWISE_METRICS}
        fused[mode] = images
    change = float(np.mean([np.abs(a - b).mean() for a, b in zip(fused["retrieved"], fused["mean"])]))
    return {"pairs": len(pairs), "retrieved": results["retrieved"], "mean_prompt": results["mean"],
            "mean_abs_pixel_change": change,
            "delta": {m: results["retrieved"][m] - results["mean"][m] for m in PAIRWISE_METRICS}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.m2pn.memory_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="weights file (default engine/weights/m2pn.pt)")
    p.add_argument("--patches", type=int, default=64, help="validation patches (default 64)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--tno-effect", action="store_true",
                   help="also fuse the TNO pairs with the mean of the memory as prompt and report the metric change")
    args = p.parse_args(argv)
    from ..datasets import PatchDataset, split_pairs

    try:
        data = shared_data_dir()
        if data is None:
            raise FusionError("../shared/data was not found (set IRVIS_DATA_DIR)")
        model, _ = load_model(args.weights)
        split = split_pairs(data / "roadscene", 40, 0)  # the training's own split: these pairs were held out
        patches = PatchDataset(split.val, args.patches, 128, 1)
        items = [patches[i] for i in range(len(patches))]
        report = memory_usage(model, torch.stack([x[0] for x in items]), torch.stack([x[1] for x in items]))
        if args.tno_effect:
            report["tno_mean_prompt_effect"] = mean_prompt_effect(args.weights, data / "tno")
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, value in report.items():
        print(f"{key:22s} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
