"""EGMT weights files: float16 state_dict (run in float32) + model config + class names, with a JSON sidecar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import FusionError, WeightsError
from ..paths import WEIGHTS_DIR
from .config import EGMTConfig
from .entity_table import EntityTable
from .model import EGMT

DEFAULT_WEIGHTS = WEIGHTS_DIR / "egmt.pt"
WEIGHTS_FORMAT = "egmt-weights-v1"


def save_weights(model: EGMT, path: str | Path, classes: list[str], meta: dict[str, Any] | None = None,
                 table: EntityTable | None = None, embed_names: list[str] | None = None) -> Path:
    """Write ``{format, config, classes, state_dict, entity_table, meta}`` to ``path`` and the same minus
    the tensors to ``.json``.

    ``entity_table``: the text features of ``embed_names`` (default: the classes) from ``table``, float16,
    so the method runs where the full CLIP tables are not on disk (the trainer embeds the 80 COCO names,
    the default detector's vocabulary; other names are then ignored).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # float16 on disk (half the size of float32; the model runs in float32 after loading)
    state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu().clone()
             for k, v in model.state_dict().items()}
    meta = dict(meta or {})
    meta.setdefault("parameters", model.count_parameters())
    embedded = None
    if table is not None:
        feats, found = table.lookup(list(embed_names or []) + list(classes))
        embedded = {"names": found, "features": torch.from_numpy(feats).half(), "source": table.source}
        meta.setdefault("embedded_entity_names", len(found))
    torch.save({"format": WEIGHTS_FORMAT, "config": model.config.to_dict(), "classes": list(classes),
                "state_dict": state, "entity_table": embedded, "meta": meta}, path)
    sidecar = {"format": WEIGHTS_FORMAT, "file": path.name, "bytes": path.stat().st_size,
               "config": model.config.to_dict(), "classes": list(classes), **meta}
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    return path


def load_model(path: str | Path | None = None) -> tuple[EGMT, list[str], dict[str, Any], EntityTable | None]:
    """An EGMT in eval mode, frozen, from a weights file or an ``engine.egmt.train`` checkpoint.

    Returns (model, class names, meta, the embedded entity table or None). Raises WeightsError naming the file when it is missing or wrong.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise WeightsError(f"EGMT weights file not found: {path} (train with `python -m engine.egmt.train`)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or not a torch file
        raise WeightsError(f"cannot read EGMT weights {path}: {exc}") from None
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob:
        raise WeightsError(f"{path} is not an EGMT weights file (no 'config'/'state_dict' entries)")
    try:
        config = EGMTConfig.from_dict(blob["config"])
    except (FusionError, TypeError) as exc:
        raise WeightsError(f"{path}: bad EGMT config: {exc}") from None
    model = EGMT(config)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()},
                              strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path} does not fit the EGMT model it describes: {str(exc).splitlines()[0]}") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    table = None
    emb = blob.get("entity_table")
    if isinstance(emb, dict) and emb.get("names"):
        table = EntityTable(list(emb["names"]), emb["features"].float().numpy(), source=f"embedded in {path.name}")
    return model, list(blob.get("classes", [])), dict(blob.get("meta", {})), table
