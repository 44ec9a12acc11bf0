"""Dynamic Memory Bank (paper sec. 3.2, Eq. 2-5).

Retrieval (Eq. 2): ``Theta_f = Proj(GAP(Phi_f))``, cosine similarity ``s_i`` to every memory row,
``alpha = softmax(s / T)``, ``Theta_q = sum_i alpha_i M_i``.
Threshold (Eq. 4): ``tau = mu_hist + kappa * sigma_hist`` with learnable ``kappa``; ``mu_hist`` and
``sigma_hist`` are exponential moving averages of the quality scores seen in training (buffers).
Update (Eq. 5): an instance with quality ``Q > tau`` moves its most similar slot j:
``M_j <- (1 - beta) M_j + beta Theta_f``; training mode only, under ``no_grad``.

How kappa learns: the hard decision ``Q > tau`` has no gradient, so a soft gate
``g = sigmoid((Q - tau) / t_gate)`` stands beside it and the gate loss ``(mean(g) - rho)^2`` (see
:meth:`DynamicMemoryBank.gate_loss`) calibrates kappa so that about a fraction ``rho`` of the instances
counts as "successful experience" whatever the spread of the evaluator's scores. Only kappa receives
that gradient (quality and history are constants).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .csgn import NodeProjection


@dataclass
class MemoryUpdate:
    """What one training step did to the memory (for the paper's Figure 10 statistics).

    accepted: (B,) bool, instances written; slots: (B,) long, their most similar slot;
    threshold: tau used; quality: (B,) scores.
    """

    accepted: Tensor
    slots: Tensor
    threshold: float
    quality: Tensor


class DynamicMemoryBank(nn.Module):
    """Shapes: Phi_f (B, C, H, W) -> Theta_f (B, D), Theta_q (B, D), similarity (B, N)."""

    def __init__(
        self,
        channels: int,
        dim: int,
        slots: int = 100,
        momentum: float = 0.1,
        temperature: float = 0.1,
        kappa_init: float = 0.5,
        stats_momentum: float = 0.01,
        gate_temperature: float = 0.05,
        target_accept_rate: float = 0.25,
        use_memory: bool = True,
        use_quality: bool = True,
    ) -> None:
        super().__init__()
        self.project = NodeProjection(channels, dim)
        self.momentum, self.temperature = momentum, temperature
        self.stats_momentum, self.gate_temperature = stats_momentum, gate_temperature
        self.target_accept_rate = target_accept_rate
        self.use_memory, self.use_quality = use_memory, use_quality
        self.kappa = nn.Parameter(torch.tensor(float(kappa_init)))
        self.register_buffer("memory", torch.randn(slots, dim) * 0.1)
        self.register_buffer("quality_mean", torch.tensor(0.0))
        self.register_buffer("quality_var", torch.tensor(0.0))
        self.register_buffer("quality_count", torch.tensor(0, dtype=torch.long))
        self.register_buffer("slot_updates", torch.zeros(slots, dtype=torch.long))

    def forward(self, phi_f: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Eq. 2 and the weighted aggregation. Without memory (ablation Case 5) Theta_q = Theta_f."""
        theta_f = self.project(phi_f)
        if not self.use_memory:
            return theta_f, theta_f, theta_f.new_zeros(theta_f.shape[0], self.memory.shape[0])
        # a snapshot in training: Eq. 5 updates the buffer in place after this pass, before backward
        memory = self.memory.clone() if self.training else self.memory
        similarity = F.normalize(theta_f, dim=1) @ F.normalize(memory, dim=1).T        # (B, N), Eq. 2
        weights = (similarity / self.temperature).softmax(dim=1)
        theta_q = weights @ memory                                                      # (B, D)
        return theta_f, theta_q, similarity

    # ----- threshold (Eq. 4) -------------------------------------------------------------------
    def threshold(self) -> Tensor:
        """tau = mu_hist + kappa * sigma_hist, a 0-d tensor with a gradient to kappa."""
        return self.quality_mean + self.kappa * self.quality_var.clamp_min(0).sqrt()

    def gate_loss(self, quality: Tensor) -> Tensor:
        """(mean soft gate - rho)^2: the only source of kappa's gradient (see the module docstring).

        quality: (B,) scores in (0, 1) (constants). Returns a 0-d tensor; zero when no threshold is used.
        """
        if not (self.use_memory and self.use_quality) or int(self.quality_count) == 0:
            return self.kappa * 0.0
        gate = torch.sigmoid((quality.detach() - self.threshold()) / self.gate_temperature)
        return (gate.mean() - self.target_accept_rate) ** 2

    # ----- update (Eq. 5) ---------------------------------------------------------------------
    @torch.no_grad()
    def update(self, theta_f: Tensor, quality: Tensor | None) -> MemoryUpdate | None:
        """Write accepted instances into their most similar slots. Does nothing outside training mode.

        theta_f: (B, D); quality: (B,) in (0, 1), or None when no evaluator is used (every instance is
        then accepted, as with ``use_quality=False``, ablation Case 3).
        """
        if not self.training or not self.use_memory:
            return None
        theta_f = theta_f.detach().float()
        batch = theta_f.shape[0]
        q = quality.detach().float().flatten() if quality is not None else theta_f.new_ones(batch)
        if self.use_quality and quality is not None:
            if int(self.quality_count) == 0:  # no history yet: start it from this batch
                self.quality_mean.copy_(q.mean())
                self.quality_var.copy_(q.var(unbiased=False))
            tau = float(self.threshold())
            accepted = q > tau
        else:
            tau = float("nan")
            accepted = torch.ones(batch, dtype=torch.bool, device=q.device)
        slots = (F.normalize(theta_f, dim=1) @ F.normalize(self.memory, dim=1).T).argmax(dim=1)
        for b in torch.nonzero(accepted).flatten().tolist():  # in order: two instances may share a slot
            j = int(slots[b])
            self.memory[j].mul_(1.0 - self.momentum).add_(self.momentum * theta_f[b])
            self.slot_updates[j] += 1
        # history statistics include this batch only after the decision (tau uses the past)
        m = self.stats_momentum
        for value in q.tolist():
            delta = value - float(self.quality_mean)
            self.quality_mean.add_(m * delta)
            self.quality_var.mul_(1 - m).add_(m * (1 - m) * delta * delta)
        self.quality_count += batch
        return MemoryUpdate(accepted=accepted.cpu(), slots=slots.cpu(), threshold=tau, quality=q.cpu())
