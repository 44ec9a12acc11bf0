"""Train EGMT: ``python -m engine.egmt.train --config configs/train_egmt_cpu.yaml [--resume] [--max-minutes N]``.

The run lives in the config's ``output`` folder: ``last.pt`` (model, optimizer, step, RNG, history),
``train.log`` (one line per logged step), ``history.json`` and ``loss_curve.png``. ``--resume`` continues
exactly where ``last.pt`` stopped (fixed crop table, per-step seeded batches). ``snapshot_steps`` keeps
copies ``step_N.pt`` (equal-budget ablations compare against them). At the end (or with ``--export``)
the weights go to ``export`` with a JSON sidecar (config, command, steps, data fingerprint, time, hardware).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..errors import FusionError
from ..paths import shared_data_dir
from ..train import (add_training_arguments, read_training_yaml, resolve_repo_path, run_training_cli,
                     save_checkpoint_atomically)


@dataclass
class EGMTTrainConfig:
    sources: list[dict]
    patches: int = 6000
    patch_size: int = 128
    val_pairs: int = 30
    val_patches: int = 96
    min_class_pairs: int = 8
    data_seed: int = 0
    entity_table: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)
    batch_size: int = 8
    lr: float = 1e-3
    lr_min: float = 1e-4
    decay_start: float = 0.5          # fraction of the steps at constant lr before the cosine decay
    task_weight_lr: float = 1e-4
    steps: int = 2000
    checkpoint_every: int = 50
    validate_every: int = 250
    snapshot_steps: list = field(default_factory=list)
    seed: int = 0
    output: Path = Path("runs/egmt")
    export: Path = Path("engine/weights/egmt.pt")
    source: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> "EGMTTrainConfig":
        path = Path(path)
        raw = read_training_yaml(path, {"data", "entity_table", "model", "loss", "train", "output", "export"})
        data, train = dict(raw.get("data") or {}), dict(raw.get("train") or {})
        shared = shared_data_dir()
        sources = []
        for src in data.pop("sources", []):
            root = Path(src["root"])
            if not root.is_absolute():
                if shared is None:
                    raise FusionError("relative data roots need ../shared/data (or IRVIS_DATA_DIR)")
                root = shared / root
            sources.append({"name": src.get("name", root.name), "root": root, "entities": resolve_repo_path(src["entities"])})
        if not sources:
            raise FusionError(f"{path}: data.sources is empty")
        kw: dict[str, Any] = {"sources": sources}
        for key in ("patches", "patch_size", "val_pairs", "val_patches", "min_class_pairs"):
            if key in data:
                kw[key] = int(data.pop(key))
        if "seed" in data:
            kw["data_seed"] = int(data.pop("seed"))
        for key in ("batch_size", "steps", "checkpoint_every", "validate_every", "seed"):
            if key in train:
                kw[key] = int(train.pop(key))
        for key in ("lr", "lr_min", "decay_start", "task_weight_lr"):
            if key in train:
                kw[key] = float(train.pop(key))
        if "snapshot_steps" in train:
            kw["snapshot_steps"] = [int(s) for s in train.pop("snapshot_steps")]
        leftovers = [f"data.{k}" for k in data] + [f"train.{k}" for k in train]
        if leftovers:
            raise FusionError(f"{path}: unknown option(s) {', '.join(leftovers)}")
        kw.update(entity_table=dict(raw.get("entity_table") or {}), model=dict(raw.get("model") or {}),
                  loss=dict(raw.get("loss") or {}), source=raw)
        for key in ("output", "export"):
            if key in raw:
                kw[key] = resolve_repo_path(raw[key])
        return cls(**kw)


def build_entity_table(spec: dict):
    """``{}`` -> the shipped CLIP tables; ``{names: FILE, features: FILE}`` -> that table."""
    from .entity_table import EntityTable

    if spec.get("names"):
        return EntityTable.from_files(resolve_repo_path(spec["names"]), resolve_repo_path(spec["features"]))
    return EntityTable.clip_default(spec.get("folder"))


class EGMTTrainer:
    def __init__(self, cfg: EGMTTrainConfig, config_path: str) -> None:
        from .config import EGMTConfig
        from .data import EntityPatchDataset, class_vocabulary, collect_pairs, split_records
        from .losses import EGMTLoss, EGMTLossConfig
        from .model import EGMT

        self.cfg, self.config_path = cfg, config_path
        torch.manual_seed(cfg.seed)
        records = collect_pairs(cfg.sources)
        train, val = split_records(records, cfg.val_pairs, cfg.data_seed)
        self.classes = class_vocabulary(train, cfg.min_class_pairs)
        self.table = build_entity_table(cfg.entity_table)
        self.train_set = EntityPatchDataset(train, self.classes, cfg.patches, cfg.patch_size, cfg.data_seed)
        self.val_set = EntityPatchDataset(val, self.classes, cfg.val_patches, cfg.patch_size, cfg.data_seed + 1)
        model_cfg = dict(cfg.model)
        model_cfg.update(num_classes=max(1, len(self.classes)), entity_dim=self.table.dim)
        self.model = EGMT(EGMTConfig.from_dict(model_cfg))
        self.loss = EGMTLoss(EGMTLossConfig.from_dict(cfg.loss), self.train_set.positive_ratio())
        self.optimizer = torch.optim.Adam([
            {"params": list(self.model.parameters()), "lr": cfg.lr, "name": "model"},
            {"params": list(self.loss.task_weights.parameters()), "lr": cfg.task_weight_lr, "name": "task_weights"},
        ])
        self.step, self.elapsed_s = 0, 0.0
        self.history: dict[str, list] = {"steps": [], "val": []}

    def lr_at(self, step: int) -> float:
        """Constant ``lr`` for the first ``decay_start`` of the run, then cosine down to ``lr_min``."""
        start = int(self.cfg.decay_start * self.cfg.steps)
        if step < start:
            return self.cfg.lr
        t = (step - start) / max(1, self.cfg.steps - start)
        return self.cfg.lr_min + 0.5 * (self.cfg.lr - self.cfg.lr_min) * (1 + math.cos(math.pi * min(t, 1.0)))

    def batch_indices(self, step: int) -> np.ndarray:
        per_epoch = len(self.train_set) // self.cfg.batch_size
        epoch, within = divmod(step, per_epoch)
        order = np.random.default_rng(self.cfg.seed * 100003 + epoch).permutation(len(self.train_set))
        b = self.cfg.batch_size
        return order[within * b:(within + 1) * b]

    def forward_loss(self, dataset, indices):
        from .data import encode_entities

        ir, vi, names, targets = dataset.batch(indices)
        ent, mask = encode_entities(names, self.table)
        out = self.model(ir, vi, ent, mask)
        return out, self.loss(out.fused, ir, vi, out.logits, targets if out.logits is not None else None), targets

    def train_step(self) -> dict[str, float]:
        self.model.train()
        self.optimizer.param_groups[0]["lr"] = self.lr_at(self.step)
        _, terms, _ = self.forward_loss(self.train_set, self.batch_indices(self.step))
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        self.step += 1
        row = {"step": self.step, "total": round(float(terms.total.detach()), 5),
               **{k: round(float(v.detach()), 5) for k, v in terms.terms.items()}}
        self.history["steps"].append(row)
        return row

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        from .classification import multilabel_metrics

        self.model.eval()
        sums, count, probs, targets_all = {}, 0, [], []
        for start in range(0, len(self.val_set), self.cfg.batch_size):
            idx = list(range(start, min(start + self.cfg.batch_size, len(self.val_set))))
            out, terms, targets = self.forward_loss(self.val_set, idx)
            for k, v in terms.terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
            count += len(idx)
            if out.logits is not None:
                probs.append(torch.sigmoid(out.logits).numpy())
                targets_all.append(targets.numpy())
        row = {"step": self.step, **{k: round(v / count, 5) for k, v in sums.items()}}
        if probs:
            row.update({f"val_{k}": v for k, v in multilabel_metrics(np.concatenate(targets_all), np.concatenate(probs)).items()})
        self.history["val"].append(row)
        return row

    def meta(self) -> dict[str, Any]:
        from ..train import hardware_description

        last = self.history["steps"][-50:]
        final = {k: round(float(np.mean([r[k] for r in last if k in r])), 5) for k in (last[0] if last else {}) if k != "step"}
        lam = self.loss.task_weights().detach().tolist()
        return {
            "steps": self.step, "planned_steps": self.cfg.steps, "batch_size": self.cfg.batch_size,
            "patch_size": self.cfg.patch_size, "data_fingerprint": self.train_set.fingerprint(),
            "data_sources": [{"name": s["name"], "root": str(s["root"]), "entities": str(s["entities"])} for s in self.cfg.sources],
            "train_pairs": len(self.train_set.records), "val_pairs": len(self.val_set.records),
            "val_pair_names": [f"{r.dataset}/{r.name}" for r in self.val_set.records],
            "entity_table": self.table.source, "entity_dim": self.table.dim, "classes": self.classes,
            "task_weights_lambda": [round(x, 4) for x in lam],
            "final_train_losses_last50": final, "final_val": self.history["val"][-1] if self.history["val"] else None,
            "train_time_s": round(self.elapsed_s, 1), "hardware": hardware_description(),
            "torch_threads": torch.get_num_threads(), "config_file": self.config_path,
            "command": f"python -m engine.egmt.train --config {self.config_path}",
        }

    def save_checkpoint(self) -> Path:
        blob = {"format": "egmt-checkpoint-v1", "config": self.model.config.to_dict(), "classes": self.classes,
                "state_dict": self.model.state_dict(), "loss_state": self.loss.state_dict(),
                "optimizer": self.optimizer.state_dict(), "step": self.step, "elapsed_s": self.elapsed_s,
                "history": self.history, "meta": self.meta(), "train_config": self.cfg.source,
                "torch_rng": torch.get_rng_state()}
        return save_checkpoint_atomically(blob, self.history, self.cfg.output)

    def load_checkpoint(self) -> None:
        path = self.cfg.output / "last.pt"
        if not path.is_file():
            raise FusionError(f"--resume: no checkpoint at {path}")
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if blob.get("config") != self.model.config.to_dict():
            raise FusionError(f"--resume: {path} was trained with a different model config")
        if blob["meta"].get("data_fingerprint") != self.train_set.fingerprint():
            raise FusionError(f"--resume: {path} was trained on different data (fingerprint mismatch)")
        self.model.load_state_dict(blob["state_dict"])
        self.loss.load_state_dict(blob["loss_state"])
        self.optimizer.load_state_dict(blob["optimizer"])
        self.step, self.elapsed_s, self.history = blob["step"], blob["elapsed_s"], blob["history"]
        torch.set_rng_state(blob["torch_rng"])

    def write_plot(self) -> None:
        from .plots import plot_training

        plot_training(self.history, self.cfg.output / "loss_curve.png")

    def export(self, path: Path | None = None) -> Path:
        from .weights import save_weights

        from .entity_table import default_clip_dir

        coco = None
        folder = Path(self.cfg.entity_table.get("folder") or default_clip_dir() or "")
        if (folder / "coco_names.txt").is_file():
            coco = [n.strip() for n in (folder / "coco_names.txt").read_text().splitlines() if n.strip()]
        return save_weights(self.model, path or self.cfg.export, self.classes, self.meta(), self.table, coco)


def run(args: argparse.Namespace) -> int:
    cfg = EGMTTrainConfig.load(args.config)
    if args.output:
        cfg.output = resolve_repo_path(args.output)
    torch.set_num_threads(args.threads)
    trainer = EGMTTrainer(cfg, args.config)
    if args.resume:
        trainer.load_checkpoint()
    cfg.output.mkdir(parents=True, exist_ok=True)
    log = open(cfg.output / "train.log", "a", buffering=1)

    def say(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")

    target = cfg.steps if args.max_steps is None else min(cfg.steps, trainer.step + args.max_steps)
    deadline = time.monotonic() + args.max_minutes * 60 if args.max_minutes else None
    say(f"EGMT: {trainer.model.count_parameters():,} parameters; {len(trainer.train_set)} crops of {cfg.patch_size}px "
        f"from {len(trainer.train_set.records)} pairs ({len(trainer.val_set.records)} held out); classes "
        f"{trainer.classes}; entity table {trainer.table.source} ({trainer.table.dim}-d); step {trainer.step}/{cfg.steps}; "
        f"{torch.get_num_threads()} thread(s); output {cfg.output}")
    stopped_early = False
    while trainer.step < target:
        start = time.monotonic()
        row = trainer.train_step()
        trainer.elapsed_s += time.monotonic() - start
        if trainer.step % 10 == 0 or trainer.step == 1:
            rate = trainer.elapsed_s / max(1, len(trainer.history["steps"]))
            eta = (target - trainer.step) * rate / 60
            say(f"step {trainer.step}/{cfg.steps} ({trainer.step / cfg.steps:.0%}, {rate:.2f} s/step, ~{eta:.0f} min left) "
                + " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "step"))
        if trainer.step % cfg.validate_every == 0:
            say(f"validation {trainer.validate()}")
        if trainer.step % cfg.checkpoint_every == 0 or trainer.step in cfg.snapshot_steps:
            trainer.save_checkpoint()
            trainer.write_plot()
        if trainer.step in cfg.snapshot_steps:
            shutil.copy2(cfg.output / "last.pt", cfg.output / f"step_{trainer.step}.pt")
        if deadline is not None and time.monotonic() > deadline:
            stopped_early = True
            break
    if not trainer.history["val"] or trainer.history["val"][-1]["step"] != trainer.step:
        say(f"validation {trainer.validate()}")
    path = trainer.save_checkpoint()
    trainer.write_plot()
    say(f"checkpoint {path} at step {trainer.step}/{cfg.steps}, {trainer.elapsed_s / 60:.1f} min of training")
    if stopped_early:
        say(f"stopped after {args.max_minutes} minutes; continue with: python -m engine.egmt.train --config {args.config} --resume")
    if args.export or trainer.step >= cfg.steps:
        target_path = resolve_repo_path(args.export) if isinstance(args.export, str) else None
        say(f"weights exported to {trainer.export(target_path)}")
    log.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.egmt.train", description="Train the EGMT fusion network.")
    add_training_arguments(parser, "configs/train_egmt_cpu.yaml")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model option, e.g. use_cgha=false (ablations)")
    args = parser.parse_args(argv)

    def train() -> int:
        if args.model_option:
            _patch_model_options(args)
        return run(args)

    return run_training_cli(train)


def _patch_model_options(args: argparse.Namespace) -> None:
    """Write a copy of the config with the ``--model-option`` overrides next to the run (ablations)."""
    raw = yaml.safe_load(Path(args.config).read_text()) or {}
    model = dict(raw.get("model") or {})
    for item in args.model_option:
        key, _, value = item.partition("=")
        model[key.strip()] = yaml.safe_load(value)
    raw["model"] = model
    out = resolve_repo_path(args.output or raw.get("output", "runs/egmt"))
    out.mkdir(parents=True, exist_ok=True)
    patched = out / "config.yaml"
    patched.write_text(yaml.safe_dump(raw, sort_keys=False))
    args.config = str(patched)


if __name__ == "__main__":
    sys.exit(main())
