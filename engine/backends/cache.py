"""On-disk cache of compiled engines, keyed by everything that makes an engine invalid when it changes.

Key = SHA-256 over: the model hash (state_dict bytes + config), the input :class:`ShapeSpec`, the
precision, the backend/runtime name and the versions of torch and of the compiler. A change of any of them
gives a new key, so a stale engine is never loaded: it is rebuilt and stored beside the old ones.

Layout: ``<cache_dir>/<key>.<ext>`` (the engine) + ``<cache_dir>/<key>.json`` (what the key was made of).
An entry counts as present only when both files exist and the JSON names the same key; a half-written
entry (crash during a build) is therefore a miss and gets rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .shapes import ShapeSpec

log = logging.getLogger("engine.backends")


def default_cache_dir() -> Path:
    """``$IRVIS_ENGINE_CACHE`` or ``~/.cache/irvis-fusion/engines``."""
    override = os.environ.get("IRVIS_ENGINE_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "irvis-fusion" / "engines"


def model_hash(model: nn.Module) -> str:
    """SHA-256 of the model's config (if it has one) and of every state_dict tensor's name, dtype, shape and bytes.

    Buffers count too: M2PN's memory bank is a buffer, and a different memory is a different model.
    """
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None:
        cfg = config.to_dict() if hasattr(config, "to_dict") else repr(config)
        h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)  # 0-d tensors cannot be viewed as bytes
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def runtime_versions(compiler: str | None = None) -> dict[str, str]:
    """torch version, plus the compiler's (e.g. torch_tensorrt) when it is importable."""
    versions = {"torch": torch.__version__}
    if compiler:
        try:
            module = __import__(compiler)
            versions[compiler] = str(getattr(module, "__version__", "unknown"))
        except ImportError:
            versions[compiler] = "absent"
    return versions


@dataclass(frozen=True)
class CacheKey:
    """Everything an engine depends on, and its digest."""

    model: str
    shape: str
    precision: str
    backend: str
    versions: tuple[tuple[str, str], ...]

    @classmethod
    def make(cls, model_digest: str, shape: ShapeSpec, precision: str, backend: str,
             versions: dict[str, str]) -> "CacheKey":
        return cls(model_digest, shape.key(), precision, backend, tuple(sorted(versions.items())))

    @property
    def digest(self) -> str:
        payload = json.dumps(self.as_dict(), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:24]

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "shape": self.shape, "precision": self.precision,
                "backend": self.backend, "versions": dict(self.versions)}


class EngineCache:
    """Look up / store compiled engines under ``root`` (created on first store)."""

    def __init__(self, root: str | Path | None = None, extension: str = "ep") -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.extension = extension

    def engine_path(self, key: CacheKey) -> Path:
        return self.root / f"{key.digest}.{self.extension}"

    def meta_path(self, key: CacheKey) -> Path:
        return self.root / f"{key.digest}.json"

    def lookup(self, key: CacheKey) -> Path | None:
        """The engine file for ``key`` when a complete entry exists, else None (a miss)."""
        engine, meta = self.engine_path(key), self.meta_path(key)
        if not (engine.is_file() and meta.is_file()):
            return None
        try:
            stored = json.loads(meta.read_text())
        except (OSError, ValueError):
            log.warning("engine cache entry %s has an unreadable description; rebuilding", meta)
            return None
        if stored.get("digest") != key.digest:
            return None
        return engine

    def store(self, key: CacheKey, write_engine) -> Path:
        """Create the entry: ``write_engine(path)`` writes the engine, then the JSON marks it complete."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.engine_path(key)
        write_engine(path)
        self.meta_path(key).write_text(json.dumps({"digest": key.digest, **key.as_dict()}, indent=2) + "\n")
        return path

    def entries(self) -> list[dict[str, Any]]:
        """Descriptions of the complete entries (for ``--list``-style reporting and tests)."""
        if not self.root.is_dir():
            return []
        out = []
        for meta in sorted(self.root.glob("*.json")):
            try:
                data = json.loads(meta.read_text())
            except (OSError, ValueError):
                continue
            if (self.root / f"{data.get('digest')}.{self.extension}").is_file():
                out.append(data)
        return out
