"""Train M2PN: ``python -m engine.train --config configs/train_m2pn.yaml [--resume] [--max-minutes N]``.

Several processes or machines: ``torchrun --nproc_per_node N -m engine.train --config ...`` (DDP: gloo on
the CPU, NCCL on CUDA); each process takes its share of every global batch, gradients are averaged, the
memory-bank writes are gathered so every process keeps the same bank, and only rank 0 writes files.

The run lives in the config's ``output`` folder: ``last.pt`` (full checkpoint: model, optimizer,
step, memory bank, RNG, history), ``loss_curve.png``, ``memory_bank.png``, ``history.json`` and
``train.log`` lines. ``--resume`` continues exactly where ``last.pt`` stopped (same batch order), so a
CPU run can be spread over several sessions. At the end (or with ``--export``) the weights go to the
config's ``export`` path as a small float32 file with a JSON sidecar.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml

from .errors import FusionError
from .paths import REPO_ROOT, shared_data_dir


@dataclass
class TrainConfig:
    """The whole training recipe, read from YAML (sections data, model, loss, quality, train)."""

    data_root: Path | None
    patches: int = 8000
    patch_size: int = 128
    val_pairs: int = 40
    val_patches: int = 160
    data_seed: int = 0
    model: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)
    quality: dict = field(default_factory=lambda: {"kind": "noref"})
    batch_size: int = 16
    lr: float = 1e-3
    lr_decay_per_epoch: float = 0.9
    epochs: int = 10
    checkpoint_every: int = 25
    val_every: int = 0        # also validate every N steps (0: only at the end of each epoch)
    seed: int = 0
    output: Path = Path("runs/m2pn")
    export: Path = Path("engine/weights/m2pn.pt")
    source: dict = field(default_factory=dict)
    sources: list = field(default_factory=list)   # data.sources entries (several folders / videos)
    precision: str = "fp32"                       # fp32 | bf16 (autocast of the network's forward pass)
    init_from: Path | None = None                 # start from these weights (matching tensors; memory bank fresh)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        raw = read_training_yaml(path, {"data", "model", "loss", "quality", "train", "output", "export"})
        data, train = dict(raw.get("data") or {}), dict(raw.get("train") or {})
        root = data.pop("root", None)
        sources = data.pop("sources", None) or []
        if not isinstance(sources, list):
            raise FusionError(f"{path}: data.sources must be a list of {{path, kind, val, every}} entries")
        if sources:
            root = None
        kwargs: dict[str, Any] = {"sources": sources}
        for key in ("patches", "patch_size", "val_pairs", "val_patches"):
            if key in data:
                kwargs[key] = int(data.pop(key))
        if "seed" in data:
            kwargs["data_seed"] = int(data.pop("seed"))
        for key in ("batch_size", "epochs", "checkpoint_every", "val_every", "seed"):
            if key in train:
                kwargs[key] = int(train.pop(key))
        for key in ("lr", "lr_decay_per_epoch"):
            if key in train:
                kwargs[key] = float(train.pop(key))
        if "init_from" in train:
            value = train.pop("init_from")
            kwargs["init_from"] = resolve_repo_path(value) if value else None
        if "precision" in train:
            kwargs["precision"] = str(train.pop("precision"))
            if kwargs["precision"] not in ("fp32", "bf16"):
                raise FusionError(f"{path}: train.precision must be fp32 or bf16, got {kwargs['precision']!r}")
        leftovers = [f"data.{k}" for k in data] + [f"train.{k}" for k in train]
        if leftovers:
            raise FusionError(f"{path}: unknown option(s) {', '.join(leftovers)}")
        if root is None and not sources:  # only now: a bad option is reported even without the data
            shared = shared_data_dir()
            if shared is None:
                raise FusionError("no data root in the config and ../shared/data was not found (set IRVIS_DATA_DIR)")
            root = shared / "roadscene"
        kwargs["data_root"] = resolve_repo_path(root) if root is not None else None
        kwargs.update(model=dict(raw.get("model") or {}), loss=dict(raw.get("loss") or {}),
                      quality=dict(raw.get("quality") or {"kind": "noref"}), source=raw)
        if "output" in raw:
            kwargs["output"] = resolve_repo_path(raw["output"])
        if "export" in raw:
            kwargs["export"] = resolve_repo_path(raw["export"])
        return cls(**kwargs)


def read_training_yaml(path: Path, sections: set[str]) -> dict[str, Any]:
    """The top-level mapping of a training config; FusionError naming the file when it is missing, not YAML,
    not a mapping, or has a section outside ``sections``."""
    if not path.is_file():
        raise FusionError(f"training config not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise FusionError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise FusionError(f"{path}: expected a mapping at the top level")
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise FusionError(f"{path}: unknown section(s) {', '.join(unknown)}; known: {', '.join(sorted(sections))}")
    return raw


def save_checkpoint_atomically(blob: dict[str, Any], history: dict, out: Path) -> Path:
    """Write ``out/last.pt`` through a temporary file and ``os.replace`` (a kill mid-write keeps the previous
    checkpoint), and ``out/history.json`` (the blob's meta plus the history). Returns the checkpoint path."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "last.pt.tmp"
    torch.save(blob, tmp)
    os.replace(tmp, out / "last.pt")
    (out / "history.json").write_text(json.dumps({"meta": blob["meta"], **history}) + "\n")
    return out / "last.pt"


def resolve_repo_path(path: str | Path) -> Path:
    """Relative paths in a config are relative to the repository root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


class Trainer:
    """One training run; builds data, model, loss, optimizer; saves and restores checkpoints."""

    def __init__(self, cfg: TrainConfig, config_path: str) -> None:
        from .datasets import PatchDataset, SourceSpec, load_sources, split_pairs
        from .m2pn import M2PN, M2PNConfig
        from .m2pn.losses import LossConfig, M2PNLoss
        from .quality import build_quality_evaluator

        self.cfg, self.config_path = cfg, config_path
        self.rank, self.world = distributed_rank_world()
        if cfg.batch_size % self.world:
            raise FusionError(f"batch_size {cfg.batch_size} must be divisible by the {self.world} processes")
        torch.manual_seed(cfg.seed)
        if cfg.sources:
            base = shared_data_dir()
            specs = [SourceSpec.from_dict(entry, base) for entry in cfg.sources]
            train, val = load_sources(specs, cfg.data_seed)
            self.train_set = PatchDataset.from_images([n for n, _ in train], [i for _, i in train], cfg.patches,
                                                      cfg.patch_size, cfg.data_seed)
            self.val_set = PatchDataset.from_images([n for n, _ in val], [i for _, i in val], cfg.val_patches,
                                                    cfg.patch_size, cfg.data_seed + 1)
            self.train_names, self.val_names = [n for n, _ in train], [n for n, _ in val]
        else:
            split = split_pairs(cfg.data_root, cfg.val_pairs, cfg.data_seed)
            self.train_set = PatchDataset(split.train, cfg.patches, cfg.patch_size, cfg.data_seed)
            self.val_set = PatchDataset(split.val, cfg.val_patches, cfg.patch_size, cfg.data_seed + 1)
            self.train_names = [ir.name for ir, _ in split.train]
            self.val_names = [ir.name for ir, _ in split.val]
        self.model = M2PN(M2PNConfig.from_dict(cfg.model))
        self.initialised_from = self._initialise(cfg.init_from) if cfg.init_from else None
        # one CUDA device per process when there is one (torchrun sets LOCAL_RANK), else the CPU
        self.device = (torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available()
                       else torch.device("cpu"))
        self.model.to(self.device)
        self.forward_model: torch.nn.Module = self.model
        if self.world > 1:  # gradients averaged across processes; buffers (the memory bank) kept in step
            from torch.nn.parallel import DistributedDataParallel

            self.forward_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        quality_opts = dict(cfg.quality)
        self.quality = build_quality_evaluator(quality_opts.pop("kind", "noref"), **quality_opts)
        self.model.set_quality_evaluator(self.quality)
        self.loss = M2PNLoss(LossConfig.from_dict(cfg.loss))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.steps_per_epoch = len(self.train_set) // cfg.batch_size
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.step = 0
        self.elapsed_s = 0.0
        self.history: dict[str, list] = {"steps": [], "val": [], "memory": []}

    def _initialise(self, path: Path) -> dict[str, Any]:
        """Copy every tensor of ``path`` whose name and shape match, except the memory bank's contents and
        statistics (a bank filled under another key reading would mislead retrieval): training carries on
        from earlier weights instead of from random ones. Returns what was taken, for the sidecar."""
        if not path.is_file():
            raise FusionError(f"train.init_from: weights file {path} not found")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        source = blob.get("state_dict", {}) if isinstance(blob, dict) else {}
        own = self.model.state_dict()
        fresh = ("dmb.memory", "dmb.slot_", "dmb.key_", "dmb.quality_")
        taken = {k: v for k, v in source.items()
                 if k in own and own[k].shape == v.shape and not k.startswith(fresh)}
        if not taken:
            raise FusionError(f"train.init_from: nothing in {path} fits this model")
        self.model.load_state_dict(taken, strict=False)
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        return {"file": str(shown), "tensors": len(taken), "of": len(own)}

    # ----- schedule -------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Smooth exponential decay: lr * decay ** (epochs done), applied per step."""
        return self.cfg.lr * self.cfg.lr_decay_per_epoch ** (step / self.steps_per_epoch)

    def batch_indices(self, step: int) -> np.ndarray:
        """Indices of the patches of global step ``step``: a fresh seeded permutation per epoch."""
        epoch, within = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng(self.cfg.seed * 100003 + epoch).permutation(len(self.train_set))
        b = self.cfg.batch_size
        return order[within * b:(within + 1) * b]

    def batch(self, dataset, indices) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [dataset[int(i)] for i in indices]
        return (torch.stack([p[0] for p in pairs]).to(self.device, non_blocking=True),
                torch.stack([p[1] for p in pairs]).to(self.device, non_blocking=True))

    # ----- steps ----------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        indices = self.batch_indices(self.step)[self.rank::self.world]  # this process's share of the batch
        ir, vi = self.batch(self.train_set, indices)
        with self.autocast():
            out = self.forward_model(ir, vi)
        out.fused = out.fused.float()
        terms = self.loss(out, ir, vi, self.model)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        self.step += 1
        row = {"step": self.step, **{k: round(v, 6) for k, v in _floats(terms).items()}}
        self.history["steps"].append(row)
        if out.memory_update is not None:
            upd = out.memory_update
            self.history["memory"].append({
                "step": self.step, "threshold": None if math.isnan(upd.threshold) else round(upd.threshold, 5),
                "quality": [round(float(q), 4) for q in upd.quality],
                "accepted": [bool(a) for a in upd.accepted],
            })
        return row

    def autocast(self):
        """bf16 autocast of the forward pass (about 2x faster convolutions on CPUs with AVX512-BF16);
        the weights, the optimizer and the loss stay float32."""
        import contextlib

        if self.cfg.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=torch.bfloat16)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean loss terms on the held-out patches (eval mode: the memory bank is not touched)."""
        self.model.eval()
        sums: dict[str, float] = {}
        count = 0
        for start in range(0, len(self.val_set), self.cfg.batch_size):
            idx = range(start, min(start + self.cfg.batch_size, len(self.val_set)))
            ir, vi = self.batch(self.val_set, idx)
            terms = _floats(self.loss(self.model(ir, vi), ir, vi, None))
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
            count += len(idx)
        row = {"step": self.step, **{k: round(v / count, 6) for k, v in sums.items()}}
        self.history["val"].append(row)
        return row

    # ----- persistence ----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        last = self.history["steps"][-50:]
        final = {k: round(float(np.mean([r[k] for r in last if k in r])), 5) for k in (last[0] if last else {}) if k != "step"}
        return {
            "steps": self.step, "epochs": round(self.step / self.steps_per_epoch, 3),
            "quality_evaluator": self.quality.name, "quality_evaluator_version": getattr(self.quality, "version", self.quality.name), "data_fingerprint": self.train_set.fingerprint(),
            "data_root": str(self.cfg.data_root) if self.cfg.data_root else None,
            "data_sources": self.cfg.sources or None, "train_pairs": len(self.train_names), "val_pairs": len(self.val_names),
            "precision": self.cfg.precision, "processes": self.world, "initialised_from": self.initialised_from,
            "final_train_losses_last50": final, "final_val_losses": self.history["val"][-1] if self.history["val"] else None,
            "train_time_s": round(self.elapsed_s, 1), "hardware": hardware_description(),
            "config_file": self.config_path, "loss_config": self.cfg.loss,
            "command": f"python -m engine.train --config {self.config_path}",
        }

    def save_checkpoint(self) -> Path:
        out = self.cfg.output
        _check_processes_agree(self.model)
        if self.rank != 0:  # one writer; the others wait so nobody reads a half-written file
            _barrier()
            return out / "last.pt"
        blob = {
            "format": "m2pn-checkpoint-v1", "config": self.model.config.to_dict(),
            "state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "step": self.step, "elapsed_s": self.elapsed_s, "history": self.history, "meta": self.meta(),
            "train_config": self.cfg.source, "torch_rng": torch.get_rng_state(),
        }
        path = save_checkpoint_atomically(blob, self.history, out)
        _barrier()
        return path

    def load_checkpoint(self) -> None:
        path = self.cfg.output / "last.pt"
        if not path.is_file():
            raise FusionError(f"--resume: no checkpoint at {path}")
        blob = torch.load(path, map_location="cpu", weights_only=False)
        from .m2pn import M2PNConfig

        # options added since the checkpoint was written take their defaults
        if M2PNConfig.from_dict(blob.get("config")).to_dict() != self.model.config.to_dict():
            raise FusionError(f"--resume: {path} was trained with a different model config")
        if blob["meta"].get("data_fingerprint") != self.train_set.fingerprint():
            raise FusionError(f"--resume: {path} was trained on different data (fingerprint mismatch)")
        self.model.load_state_dict(blob["state_dict"])
        self.optimizer.load_state_dict(blob["optimizer"])
        self.step, self.elapsed_s, self.history = blob["step"], blob["elapsed_s"], blob["history"]
        torch.set_rng_state(blob["torch_rng"])

    def write_plots(self) -> None:
        from .m2pn.training_plots import plot_losses, plot_memory_bank

        out = self.cfg.output
        plot_losses(self.history, out / "loss_curve.png")
        slots = self.model.dmb.slot_updates.cpu().numpy() if getattr(self.model, "dmb", None) is not None else np.zeros(0)
        plot_memory_bank(self.history, slots, out / "memory_bank.png")

    def export(self, path: Path | None = None) -> Path:
        from .m2pn import save_weights

        return save_weights(self.model, path or self.cfg.export, self.meta())


def distributed_rank_world() -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _check_processes_agree(model: torch.nn.Module) -> None:
    """With several processes: every one must hold the same weights and memory bank (a checksum of the
    whole state is compared); a difference means the run is broken and must not be saved as if it were not."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    total = torch.tensor([sum(float(v.double().sum()) for v in model.state_dict().values())], dtype=torch.float64)
    sums = [torch.zeros_like(total) for _ in range(dist.get_world_size())]
    dist.all_gather(sums, total)
    if any(not torch.equal(x, sums[0]) for x in sums):
        raise FusionError(f"training processes diverged (state checksums {[float(x) for x in sums]})")


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _floats(terms) -> dict[str, float]:
    return {"total": float(terms.total.detach()), **{k: float(v.detach()) for k, v in terms.terms.items()}}


def hardware_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU only ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    return f"{cpu}; {device}; torch {torch.__version__}"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    cfg = TrainConfig.load(args.config)
    if args.output:
        cfg.output = resolve_repo_path(args.output)
    if args.threads:
        torch.set_num_threads(args.threads)
    trainer = Trainer(cfg, args.config)
    lead = trainer.rank == 0
    say = (lambda text: print(text, flush=True)) if lead else (lambda text: None)
    if args.resume:
        trainer.load_checkpoint()
        say(f"resumed from {cfg.output / 'last.pt'} at step {trainer.step}/{trainer.total_steps}")
    target = trainer.total_steps if args.max_steps is None else min(trainer.total_steps, trainer.step + args.max_steps)
    deadline = time.monotonic() + args.max_minutes * 60 if args.max_minutes else None
    say(f"M2PN: {trainer.model.count_parameters():,} parameters; {len(trainer.train_set)} patches of "
        f"{cfg.patch_size}px from {len(trainer.train_names)} images; {trainer.steps_per_epoch} steps/epoch; "
        f"quality evaluator '{trainer.quality.name}'; {cfg.precision}; {trainer.world} process(es); output {cfg.output}")
    bar = tqdm(total=target, initial=trainer.step, desc="train", unit="step", dynamic_ncols=True, mininterval=5,
               disable=not lead)
    stopped_early = False
    while trainer.step < target:
        start = time.monotonic()
        row = trainer.train_step()
        trainer.elapsed_s += time.monotonic() - start
        bar.update(1)
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "step"}, refresh=False)
        periodic = cfg.val_every and trainer.step % cfg.val_every == 0
        if (trainer.step % trainer.steps_per_epoch == 0 or periodic) and lead:
            val = trainer.validate()
            bar.write(f"step {trainer.step} (epoch {trainer.step / trainer.steps_per_epoch:.2f}): validation {val}")
        if trainer.step % cfg.checkpoint_every == 0:
            trainer.save_checkpoint()
            if lead:
                trainer.write_plots()
        if _agreed_stop(deadline is not None and time.monotonic() > deadline):
            stopped_early = True
            break
    bar.close()
    if lead and (not trainer.history["val"] or trainer.history["val"][-1]["step"] != trainer.step):
        trainer.validate()
    path = trainer.save_checkpoint()
    if not lead:
        return 0
    trainer.write_plots()
    say(f"checkpoint {path} at step {trainer.step}/{trainer.total_steps}; plots in {cfg.output}")
    if stopped_early:
        say(f"stopped after {args.max_minutes} minutes; continue with: python -m engine.train --config {args.config} --resume")
    if args.export or trainer.step >= trainer.total_steps:
        target_path = resolve_repo_path(args.export) if isinstance(args.export, str) else None
        say(f"weights exported to {trainer.export(target_path)}")
    return 0


def _agreed_stop(local: bool) -> bool:
    """Whether to stop now; with several processes, stop when any of them wants to (all in the same step)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return local
    flag = torch.tensor([1.0 if local else 0.0])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item() > 0)


def add_training_arguments(parser: argparse.ArgumentParser, example_config: str) -> None:
    """The options every trainer takes: --config, --resume, --max-steps, --max-minutes, --output, --export."""
    parser.add_argument("--config", required=True, help=f"YAML training config (e.g. {example_config})")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt")
    parser.add_argument("--max-steps", type=int, help="stop after this many more steps (checkpoint kept)")
    parser.add_argument("--max-minutes", type=float, help="stop after this much wall time (checkpoint kept)")
    parser.add_argument("--output", help="override the config's output folder")
    parser.add_argument("--export", nargs="?", const=True, default=None,
                        help="write the weights file even if training is not finished (optional PATH)")


def run_training_cli(train: Callable[[], int]) -> int:
    """Run a trainer with the command line's error handling: a FusionError is one line and exit 2, Ctrl-C
    keeps the last checkpoint and exits 130."""
    try:
        return train()
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept (continue with --resume)", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.train", description="Train the M2PN fusion network.")
    add_training_arguments(parser, "configs/train_m2pn.yaml")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args(argv)
    return run_training_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
