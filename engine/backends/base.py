"""The one interface every inference backend implements: a :class:`Runner`.

A runner takes (B, 1, H, W) float32 CPU tensors in [0, 1] (thermal, visible) and returns the fused
(B, 1, H, W) float32 CPU tensor in [0, 1]. Where a backend needs it, the runner pads the inputs to the
size multiple the network (or the compiled engine) needs and crops the result back, so callers never see
padding. Each runner records which backend was asked for, which one runs, and why they differ.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn

BACKEND_NAMES = ("auto", "tensorrt", "cuda", "cpu")


@dataclass
class BackendChoice:
    """What was asked for and what runs, for logs, the viewer's status bar and the benchmark table.

    Attributes:
        requested: the ``backend`` option as given (``auto``, ``tensorrt``, ``cuda``, ``cpu``).
        name: the backend that runs (``tensorrt``, ``cuda`` or ``cpu``).
        runtime: the engine underneath (``torch-tensorrt``, ``torch``, ``onnxruntime``).
        precision: ``fp16`` or ``fp32``.
        fallbacks: one line per backend that was tried and skipped, with the reason.
    """

    requested: str
    name: str
    runtime: str
    precision: str
    fallbacks: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = f"{self.name} ({self.runtime}, {self.precision})"
        if self.fallbacks:
            text += f"; requested {self.requested}: " + "; ".join(self.fallbacks)
        return text


class FusedOutput(nn.Module):
    """Wrap an M2PN so that ``forward(ir, vi)`` returns only the fused tensor (B, 1, H, W).

    Exporters (ONNX, torch.export / torch-tensorrt) need plain tensors out, not the M2PNOutput dataclass.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        out = self.model(ir, vi)
        return out.fused if hasattr(out, "fused") else out


class Runner(ABC):
    """Callable ``runner(ir, vi) -> fused`` on (B, 1, H, W) float32 CPU tensors in [0, 1]."""

    choice: BackendChoice

    @property
    def name(self) -> str:
        return self.choice.name

    @abstractmethod
    def __call__(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor: ...

    def close(self) -> None:
        """Release device memory / sessions. Safe to call twice."""


class RunnerBacked:
    """Mixin for fusion methods that run their network through a :class:`Runner` kept in ``self._runner``."""

    _runner: Runner | None = None

    @property
    def backend(self) -> str:
        """What runs the network, e.g. ``cpu (onnxruntime, fp32)``; ``closed`` after ``close()``."""
        if self._runner is None:
            return "closed"
        c = self._runner.choice
        return f"{c.name} ({c.runtime}, {c.precision})"

    @property
    def backend_choice(self) -> BackendChoice | None:
        """The :class:`BackendChoice` (requested backend, fallbacks with their reasons); None once closed."""
        return self._runner.choice if self._runner is not None else None

    def close(self) -> None:
        """Release the runner (an accelerator backend may hold device memory). Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()
