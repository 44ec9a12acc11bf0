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

Two readings of the key, chosen by ``key_mode``:

* ``"raw"`` (the first trained weights): ``Theta_f`` straight from the projection; retrieval over all N
  slots, every accepted instance moves its nearest slot. Measured on those weights: ``Theta_f`` is 99.95 %
  its batch mean, so every write went to one slot and the bank acted as one constant prompt.
* ``"standardized"`` (default): ``Theta_f`` is standardised per dimension by running statistics (a
  batch-norm without affine parameters, statistics frozen at inference), so what is stored and compared
  is what differs between instances. Slots start empty and are masked out of retrieval until written;
  an accepted instance fills an empty slot first, else moves its nearest slot by Eq. 5 when the cosine
  similarity reaches ``merge_threshold``, else replaces the least used slot (usage: running mean of the
  retrieval weight each slot receives). This is our reading of "stores and retrieves high-quality
  fusion patterns" with N = 100 distinct experiences (the paper's Fig. 10 shows balanced slot use).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .csgn import NodeProjection

KEY_MODES = ("raw", "standardized")


def _all_gather_rows(t: Tensor) -> Tensor:
    """Concatenate (B, ...) tensors of every process of a torch.distributed run (identity otherwise), so that
    every process applies the same memory writes in the same order and the banks stay identical."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim=0)


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
        key_mode: str = "standardized",
        merge_threshold: float = 0.6,
        key_momentum: float = 0.01,
        usage_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        if key_mode not in KEY_MODES:
            raise ValueError(f"key_mode must be one of {KEY_MODES}, got {key_mode!r}")
        self.key_mode, self.merge_threshold = key_mode, merge_threshold
        self.key_momentum, self.usage_momentum = key_momentum, usage_momentum
        #: inference-time override for measurements: "mean" retrieves the mean of the written slots
        self.retrieval_override: str | None = None
        self.last_weights: Tensor | None = None
        self.project = NodeProjection(channels, dim)
        self.momentum, self.temperature = momentum, temperature
        self.stats_momentum, self.gate_temperature = stats_momentum, gate_temperature
        self.target_accept_rate = target_accept_rate
        self.use_memory, self.use_quality = use_memory, use_quality
        self.kappa = nn.Parameter(torch.tensor(float(kappa_init)))
        standardized = key_mode == "standardized"
        self.register_buffer("memory", torch.zeros(slots, dim) if standardized else torch.randn(slots, dim) * 0.1)
        # running statistics of the projected key (standardized mode), and which slots hold an experience
        self.register_buffer("key_mean", torch.zeros(dim))
        self.register_buffer("key_var", torch.ones(dim))
        self.register_buffer("key_count", torch.tensor(0, dtype=torch.long))
        self.register_buffer("slot_written", torch.zeros(slots, dtype=torch.bool) if standardized
                             else torch.ones(slots, dtype=torch.bool))
        self.register_buffer("slot_usage", torch.zeros(slots))
        self.register_buffer("quality_mean", torch.tensor(0.0))
        self.register_buffer("quality_var", torch.tensor(0.0))
        self.register_buffer("quality_count", torch.tensor(0, dtype=torch.long))
        self.register_buffer("slot_updates", torch.zeros(slots, dtype=torch.long))

    def forward(self, phi_f: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Eq. 2 and the weighted aggregation. Without memory (ablation Case 5) Theta_q = Theta_f.

        phi_f (B, C, H, W) -> Theta_f (B, D), Theta_q (B, D), similarity (B, N) (cosine; unwritten slots 0).
        The retrieval weights (B, N) of the last call are kept in ``last_weights`` for reports.
        """
        theta_f = self.key(self.project(phi_f))
        if not self.use_memory:
            return theta_f, theta_f, theta_f.new_zeros(theta_f.shape[0], self.memory.shape[0])
        # a snapshot in training: Eq. 5 updates the buffer in place after this pass, before backward
        memory = self.memory.clone() if self.training else self.memory
        written = self.slot_written.clone()
        similarity = F.normalize(theta_f, dim=1) @ F.normalize(memory, dim=1).T        # (B, N), Eq. 2
        similarity = similarity.masked_fill(~written, 0.0)
        if not bool(written.any()):  # nothing stored yet: the instance is its own experience
            self.last_weights = similarity.new_zeros(similarity.shape)
            return theta_f, theta_f, similarity
        logits = (similarity / self.temperature).masked_fill(~written, float("-inf"))
        weights = logits.softmax(dim=1)
        if self.retrieval_override == "mean":
            weights = written.float().expand_as(weights) / written.sum()
        theta_q = weights @ memory                                                      # (B, D)
        self.last_weights = weights.detach()
        if self.training and self.key_mode == "standardized":
            with torch.no_grad():  # how much each slot is used, for the replacement rule
                usage = _all_gather_rows(weights.detach()).mean(dim=0)
                self.slot_usage.mul_(1 - self.usage_momentum).add_(self.usage_momentum * usage)
        return theta_f, theta_q, similarity

    def key(self, raw: Tensor) -> Tensor:
        """(B, D) projection -> (B, D) key. Standardized mode: per-dimension running standardisation, the
        statistics updated (training only, no gradient) before use so a batch sees the newest ones."""
        if self.key_mode == "raw":
            return raw
        if self.training:
            with torch.no_grad():
                batch = _all_gather_rows(raw.detach().float())
                mean, var = batch.mean(dim=0), batch.var(dim=0, unbiased=False)
                if int(self.key_count) == 0:
                    self.key_mean.copy_(mean)
                    self.key_var.copy_(var)
                else:
                    m = self.key_momentum
                    self.key_mean.mul_(1 - m).add_(m * mean)
                    self.key_var.mul_(1 - m).add_(m * var)
                self.key_count += batch.shape[0]
        return (raw - self.key_mean) / (self.key_var + 1e-6).sqrt()

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
        theta_f = _all_gather_rows(theta_f.detach().float())
        if quality is not None:
            quality = _all_gather_rows(quality.detach().float().flatten())
        batch = theta_f.shape[0]
        q = quality if quality is not None else theta_f.new_ones(batch)
        if self.use_quality and quality is not None:
            if int(self.quality_count) == 0:  # no history yet: start it from this batch
                self.quality_mean.copy_(q.mean())
                self.quality_var.copy_(q.var(unbiased=False))
            tau = float(self.threshold())
            accepted = q > tau
        else:
            tau = float("nan")
            accepted = torch.ones(batch, dtype=torch.bool, device=q.device)
        if self.key_mode == "standardized":
            slots = self._write_standardized(theta_f, accepted)
        else:
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

    @torch.no_grad()
    def _write_standardized(self, theta_f: Tensor, accepted: Tensor) -> Tensor:
        """Allocation of the standardized mode: fill an empty slot, else Eq. 5 on the nearest slot when it is
        similar enough, else replace the least used slot. theta_f (B, D), accepted (B,) -> written slot (B,)
        (-1 where not accepted)."""
        slots = torch.full((theta_f.shape[0],), -1, dtype=torch.long)
        for b in torch.nonzero(accepted).flatten().tolist():  # in order: a write changes the next choice
            empty = torch.nonzero(~self.slot_written).flatten()
            if empty.numel():
                j = int(empty[0])
                self.memory[j].copy_(theta_f[b])
                self.slot_written[j] = True
                self.slot_usage[j] = self.slot_usage[self.slot_written].mean() if self.slot_written.sum() > 1 else 0.0
            else:
                sim = F.normalize(theta_f[b:b + 1], dim=1) @ F.normalize(self.memory, dim=1).T
                nearest = int(sim.argmax())
                if float(sim[0, nearest]) >= self.merge_threshold:
                    j = nearest
                    self.memory[j].mul_(1.0 - self.momentum).add_(self.momentum * theta_f[b])
                else:  # a new experience: it takes the place of the one retrieval uses least
                    j = int(self.slot_usage.argmin())
                    self.memory[j].copy_(theta_f[b])
                    self.slot_usage[j] = self.slot_usage.mean()
            self.slot_updates[j] += 1
            slots[b] = j
        return slots
