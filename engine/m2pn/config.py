"""`M2PNConfig`: every size and switch of the network, with the paper-sized default."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import FusionError


@dataclass
class M2PNConfig:
    """Hyper-parameters of :class:`engine.m2pn.M2PN`.

    Widths (channels of the feature maps) and the prompt dimension ``prompt_dim`` (D of the memory
    matrix, the graph nodes and the prompts) set the model size; the default (the paper's widths as we
    read them) has 776,594 parameters, against the paper's 0.97 M (see docs/model_card.md). The ``use_*`` switches are the paper's model ablations (Table 3).
    """

    # Feature extraction (sec. 3.1)
    stem_channels: int = 16          # first conv of the DenseEncoder
    dense_growth: int = 16           # channels added by each dense layer
    dense_layers: int = 3            # DenseEncoder output = stem + layers * growth channels
    residual_channels: int = 32      # output of the two-conv residual encoder on M = IR - VIS
    # Reconstruction (sec. 3.3): channels after PGM 1, 2, 3 (the input to PGM 1 is the encoder width)
    decoder_channels: tuple[int, ...] = (64, 32, 16)
    # Prompts (sec. 3.2)
    prompt_dim: int = 128            # D
    graph_heads: int = 4             # CSGN heads (Eq. 1)
    mgf_heads: int = 4               # MGF heads (Eq. 8)
    memory_slots: int = 100          # N
    memory_momentum: float = 0.1     # beta of Eq. 5
    retrieval_temperature: float = 0.1  # softmax(s_i / T) in the retrieval; T = 1 is the paper's literal form
    kappa_init: float = 0.5          # initial kappa of Eq. 4
    quality_stats_momentum: float = 0.01  # EMA rate of the historical quality mean / variance (Eq. 4)
    gate_temperature: float = 0.05   # width of the soft acceptance gate that gives kappa a gradient
    target_accept_rate: float = 0.25  # fraction of instances the learnt threshold lets into the memory
    memory_key: str = "standardized"  # "raw": Theta_f as projected (first weights); see dmb.py
    memory_key_momentum: float = 0.01  # EMA rate of the key statistics; must outpace the projection's drift in training
    memory_merge_threshold: float = 0.6  # cosine at which an accepted instance updates its nearest slot (Eq. 5) instead of replacing the least used one
    contrast_pool: int = 4           # F_ir / F_vi of Eq. 17: Phi pooled to pool x pool, flattened, projected to D
    # Ablation switches (paper's Table 3 cases)
    use_csgn: bool = True            # Case 4: off -> G_ir / G_vi are plain Proj(GAP(Phi)) without the graph
    use_residual: bool = True        # off -> no residual encoder: the graphs have two nodes {Theta_m, Theta_f} (our ablation "w/o residual")
    use_dmb: bool = True             # Case 5: off -> Theta_q = Theta_f (no memory)
    use_quality: bool = True         # Case 3: off -> every instance is written to the memory (no threshold)
    use_prompts: bool = True         # Case 9: off -> no CSGN, DMB, MGF, AdaIN: a plain encoder-decoder

    @property
    def encoder_channels(self) -> int:
        return self.stem_channels + self.dense_layers * self.dense_growth

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["decoder_channels"] = list(self.decoder_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "M2PNConfig":
        """Build from a mapping (YAML ``model:`` section); unknown keys are an error naming them."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FusionError(f"unknown M2PN model option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "decoder_channels" in data:
            data["decoder_channels"] = tuple(int(c) for c in data["decoder_channels"])
        cfg = cls(**data)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.prompt_dim % self.graph_heads or self.prompt_dim % self.mgf_heads:
            raise FusionError(f"prompt_dim {self.prompt_dim} must be divisible by graph_heads and mgf_heads")
        if len(self.decoder_channels) != 3:
            raise FusionError("decoder_channels needs three entries (one per Prompt Guidance Module)")
        if self.memory_slots < 1:
            raise FusionError("memory_slots must be at least 1")
        if self.memory_key not in ("raw", "standardized"):
            raise FusionError(f"memory_key must be 'raw' or 'standardized', got {self.memory_key!r}")
        if not 0.0 < self.memory_momentum <= 1.0:
            raise FusionError("memory_momentum (beta) must be in (0, 1]")
