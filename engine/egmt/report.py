"""EGMT measurements for the model card.

``python -m engine.egmt.report ablation --data ../shared/data/tno --run full=runs/egmt_cpu/step_400.pt
--run no_cgha=runs/egmt_abl_nocgha/last.pt --run no_mt=runs/egmt_abl_nomt/last.pt --out DIR``
    the nine standard metrics of each checkpoint on every pair (egmt at full resolution); ``--entities
    all,pair,none --entity-file engine/egmt/pseudo_labels/tno.json`` also compares the entity input (every
    class the model knows / the pair's detected entities / none); ``ablation.md`` + ``ablation.json``.

``python -m engine.egmt.report classes [--weights engine/weights/egmt.pt] --out DIR``
    the multi-label metrics of the paper's Table V (HL, RL, mAP, AUC, JI, F1) on held-out pairs (MSRS test
    and the training run's validation pairs) with pair-level pseudo-labels from the entity files; inputs
    fused (IR+VIS), IR only (IR, IR) and VIS only (VIS, VIS); entity input: every class the model knows
    (no label information) and, as in the paper, the pair's own entities (60 %-masked in training).
    ``classes.md`` + ``classes.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ..errors import FusionError
from ..paths import REPO_ROOT, shared_data_dir

NINE = ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM")


def ablation(data: Path, runs: dict[str, Path], out: Path, entity_modes: tuple[str, ...] = ("all",),
             entity_file: Path | None = None) -> dict:
    """Nine metrics per run and entity mode: ``all`` (every class the model knows, the default without a
    detector), ``pair`` (the pair's own detected entities from ``entity_file``), ``none`` (no entity)."""
    from ..evaluate import fused_gray_levels, load_pairs, summarise
    from ..fusion_engine import FusionEngine
    from ..metrics import compute_all
    from .method import EGMTMethod

    from .entities import load_pair_entities

    problems: list[str] = []
    pairs = load_pairs(data, None, problems)
    detected = {}
    if "pair" in entity_modes:
        if entity_file is None:
            raise FusionError("entity mode 'pair' needs --entity-file (python -m engine.egmt.entities)")
        detected = {Path(k).stem: v.entities for k, v in load_pair_entities(entity_file).items()}
    results = {}
    for name, ckpt in runs.items():
        method = EGMTMethod(weights=ckpt)
        engine = FusionEngine(method)
        for mode in entity_modes:
            scores = []
            for pair in tqdm(pairs, desc=f"ablation {name} ({mode})", unit="pair", mininterval=5):
                method.set_entities({"all": None, "none": [], "pair": detected.get(pair.name, [])}[mode])
                fused = engine.fuse(pair.ir, pair.vi)
                scores.append(compute_all(pair.ir_gray, pair.vi_gray, fused_gray_levels(fused)))
            summary = summarise(scores)
            key = name if len(entity_modes) == 1 else f"{name}, entities: {mode}"
            results[key] = {"checkpoint": str(ckpt), "steps": method.meta.get("steps"), "entities": mode,
                            "config": {k: v for k, v in method.model.config.to_dict().items() if k.startswith("use_")},
                            "means": {k: round(summary[k][0], 4) for k in NINE}}
    lines = ["| run | steps | " + " | ".join(NINE) + " |", "|---|---|" + "---|" * len(NINE)]
    for name, r in results.items():
        best = {k: max(x["means"][k] for x in results.values()) for k in NINE}
        cells = [f"**{r['means'][k]:.3f}**" if r["means"][k] == best[k] else f"{r['means'][k]:.3f}" for k in NINE]
        lines.append(f"| {name} | {r['steps']} | " + " | ".join(cells) + " |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.md").write_text("\n".join(lines) + "\n")
    (out / "ablation.json").write_text(json.dumps({"data": str(data), "pairs": len(pairs), "runs": results}, indent=1) + "\n")
    print("\n".join(lines))
    return results


def held_out_pairs(meta: dict) -> list[tuple[str, Path, Path, list[str]]]:
    """(label, ir, vi, pair entities) for MSRS test and the run's validation pairs."""
    from ..imageio import match_pairs
    from .entities import load_pair_entities

    shared = shared_data_dir()
    if shared is None:
        raise FusionError("needs ../shared/data (or IRVIS_DATA_DIR)")
    labels = REPO_ROOT / "engine" / "egmt" / "pseudo_labels"
    roots = {"msrs_test": shared / "msrs" / "test", "roadscene": shared / "roadscene",
             "msrs_train": shared / "msrs" / "train", "msrs_extra": shared / "msrs" / "extra"}
    wanted = {"msrs_test": None}
    for item in meta.get("val_pair_names", []):
        ds, name = item.split("/", 1)
        wanted.setdefault(ds, set()).add(name)
    out = []
    for ds, names in wanted.items():
        ents = load_pair_entities(labels / f"{ds}.json")
        for ir_p, vi_p in match_pairs(roots[ds] / "ir", roots[ds] / "vi").pairs:
            if names is None or ir_p.name in names:
                out.append((f"{ds}/{ir_p.name}", ir_p, vi_p, ents[ir_p.name].entities))
    return out


def classes_report(weights: Path | None, out: Path, limit: int | None = None, scale: float = 0.5) -> dict:
    from ..datasets import load_pair_luma
    from ..m2pn.method import pad_to_multiple
    from .classification import multilabel_metrics
    from .data import multi_hot
    from .entity_table import EntityTable
    from .weights import load_model

    model, classes, meta, _ = load_model(weights)
    if not model.config.use_multitask:
        raise FusionError("this model has no multi-label head (use_multitask is false)")
    table = EntityTable.clip_default()
    pairs = held_out_pairs(meta)[:limit]
    all_known = torch.from_numpy(table.lookup(classes)[0])[None]
    settings = {"fused, entities: all known": ("fused", "all"), "IR only, entities: all known": ("ir", "all"),
                "VIS only, entities: all known": ("vi", "all"), "fused, entities: the pair's own": ("fused", "own")}
    probs = {k: [] for k in settings}
    targets = []
    with torch.inference_mode():
        for _, ir_p, vi_p, names in tqdm(pairs, desc="classification", unit="pair", mininterval=5):
            ir, vi = load_pair_luma(ir_p, vi_p)
            if scale != 1.0:  # the full network at 640x480 costs seconds per pass on this CPU
                size = (max(16, round(ir.shape[1] * scale)), max(16, round(ir.shape[0] * scale)))
                ir, vi = (cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (ir, vi))
            targets.append(multi_hot(names, classes))
            ir_t, _, _ = pad_to_multiple(torch.from_numpy(ir)[None, None], model.size_multiple)
            vi_t, _, _ = pad_to_multiple(torch.from_numpy(vi)[None, None], model.size_multiple)
            own = torch.from_numpy(table.lookup(names)[0])[None]
            for key, (inputs, ent) in settings.items():
                a, b = {"fused": (ir_t, vi_t), "ir": (ir_t, ir_t), "vi": (vi_t, vi_t)}[inputs]
                logits = model(a, b, all_known if ent == "all" else own).logits[0]
                probs[key].append(torch.sigmoid(logits).numpy())
    y = np.stack(targets)
    results = {k: multilabel_metrics(y, np.stack(v)) for k, v in probs.items()}
    lines = ["| input | HL ↓ | RL ↓ | mAP ↑ | AUC ↑ | JI ↑ | F1 ↑ |", "|---|---|---|---|---|---|---|"]
    for k, m in results.items():
        lines.append(f"| {k} | " + " | ".join(f"{m[x]:.3f}" for x in ("HL", "RL", "mAP", "AUC", "JI", "F1")) + " |")
    positives = {c: int(y[:, i].sum()) for i, c in enumerate(classes)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "classes.md").write_text("\n".join(lines) + "\n")
    (out / "classes.json").write_text(json.dumps({"scale": scale, "pairs": [p[0] for p in pairs], "classes": classes,
                                                  "positives": positives, "results": results}, indent=1) + "\n")
    print(f"{len(pairs)} held-out pairs; positives per class: {positives}")
    print("\n".join(lines))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.egmt.report", description="EGMT ablation and Table V metrics.")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("ablation", help="nine metrics of several checkpoints on one dataset")
    a.add_argument("--data", required=True)
    a.add_argument("--run", action="append", required=True, metavar="NAME=CHECKPOINT")
    a.add_argument("--out", required=True)
    a.add_argument("--entities", default="all", help="comma-separated entity modes: all, pair, none (default all)")
    a.add_argument("--entity-file", default=None, help="pseudo-label file of --data (for mode 'pair')")
    c = sub.add_parser("classes", help="multi-label metrics (Table V) on held-out pairs")
    c.add_argument("--weights", default=None)
    c.add_argument("--out", required=True)
    c.add_argument("--limit", type=int, default=None, help="first N held-out pairs only")
    c.add_argument("--scale", type=float, default=0.5, help="image scale for the network (default 0.5)")
    args = parser.parse_args(argv)
    try:
        if args.command == "ablation":
            runs = {}
            for item in args.run:
                name, _, path = item.partition("=")
                if not Path(path).is_file():
                    raise FusionError(f"checkpoint not found: {path}")
                runs[name] = Path(path)
            modes = tuple(m.strip() for m in args.entities.split(",") if m.strip())
            unknown = [m for m in modes if m not in ("all", "pair", "none")]
            if unknown:
                raise FusionError(f"unknown entity mode(s) {', '.join(unknown)}; use all, pair or none")
            ablation(Path(args.data), runs, Path(args.out), modes,
                     Path(args.entity_file) if args.entity_file else None)
        else:
            classes_report(Path(args.weights) if args.weights else None, Path(args.out), args.limit, args.scale)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
