"""Weights-only files: a float32 state_dict (memory bank included) + the model config, with a JSON sidecar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import FusionError, WeightsError
from ..paths import WEIGHTS_DIR
from .config import M2PNConfig
from .model import M2PN

DEFAULT_WEIGHTS = WEIGHTS_DIR / "m2pn.pt"
WEIGHTS_FORMAT = "m2pn-weights-v1"
#: memory-bank buffers that older weight files lack; their defaults reproduce the old behaviour
LATER_BUFFERS = frozenset({"key_mean", "key_var", "key_count", "slot_written", "slot_usage"})


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save_weights(model: M2PN, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``{format, config, state_dict (float32, CPU), meta}`` to ``path`` and ``meta`` + sizes to a JSON sidecar."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().clone() for k, v in model.state_dict().items()}
    meta = dict(meta or {})
    meta.setdefault("parameters", model.count_parameters())
    torch.save({"format": WEIGHTS_FORMAT, "config": model.config.to_dict(), "state_dict": state, "meta": meta}, path)
    sidecar = {"format": WEIGHTS_FORMAT, "file": path.name, "bytes": path.stat().st_size,
               "config": model.config.to_dict(), **meta}
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    return path


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[M2PN, dict[str, Any]]:
    """Load an M2PN in eval mode from a weights file (default ``engine/weights/m2pn.pt``).

    Also accepts a training checkpoint written by ``engine.train`` (it has the same keys).

    Returns:
        (model, meta) — meta is the file's metadata (training steps, losses, data hash, ...).
    Raises:
        WeightsError: naming the file when it is missing, unreadable or does not fit the model.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise WeightsError(f"M2PN weights file not found: {path} (train with `python -m engine.train` or pass weights=PATH)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, not a torch file, ...
        raise WeightsError(f"cannot read M2PN weights {path}: {exc}") from None
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob:
        raise WeightsError(f"{path} is not an M2PN weights file (no 'config'/'state_dict' entries)")
    config_dict = dict(blob["config"])
    if "memory_key" not in config_dict:  # weights from before the standardized key: the raw reading
        config_dict["memory_key"] = "raw"
    try:
        config = M2PNConfig.from_dict(config_dict)
    except (FusionError, TypeError) as exc:
        raise WeightsError(f"{path}: bad model config: {exc}") from None
    model = M2PN(config)
    state = dict(blob["state_dict"])
    for name, value in model.state_dict().items():  # buffers added after older files were written
        if name.split(".")[-1] in LATER_BUFFERS and name not in state:
            state[name] = value
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise WeightsError(f"{path} does not fit the M2PN model it describes: {' '.join(first)}") from None
    model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model, dict(blob.get("meta", {}))


def load_frozen(weights: str | Path | None = None, model: M2PN | None = None) -> tuple[M2PN, dict[str, Any], Path | None]:
    """An M2PN ready for inference: eval mode (the memory bank is only written in training, Eq. 5) and no
    parameter asking for a gradient.

    Args:
        weights: weights file (default ``engine/weights/m2pn.pt``); ignored when ``model`` is given.
        model: an already built M2PN (tests, training previews).

    Returns:
        (model, meta, weights path or None when ``model`` was given).
    """
    path: Path | None = None
    meta: dict[str, Any] = {}
    if model is None:
        path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        model, meta = load_model(path)
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, meta, path
