"""How the memory bank of trained weights is used: ``python -m engine.m2pn.memory_report [--weights PATH]``.

On validation patches of RoadScene (the pairs the training held out) it reports how alike the instance
features ``Theta_f`` are (pairwise cosine), which slots retrieval picks (Eq. 2), how much softmax weight
the top slot takes, and how the training writes (Eq. 5) were spread over the slots (``slot_updates``).
A bank whose writes and retrievals all go to one slot acts as one learned prompt, not as a memory.
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
    weights = (out.similarity / model.dmb.temperature).softmax(dim=1)
    updates = model.dmb.slot_updates
    return {"pairs": int(ir.shape[0]), "theta_f_cosine_mean": float(off.mean()), "theta_f_cosine_min": float(off.min()),
            "retrieved_slots": sorted({int(j) for j in out.similarity.argmax(dim=1)}),
            "top_slot_weight_mean": float(weights.max(dim=1).values.mean()),
            "slots_written": int((updates > 0).sum()), "writes": int(updates.sum()), "slots": int(updates.numel())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.m2pn.memory_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="weights file (default engine/weights/m2pn.pt)")
    p.add_argument("--patches", type=int, default=64, help="validation patches (default 64)")
    p.add_argument("--json", help="also write the figures to this JSON file")
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
