"""`EGMTConfig`: every size and switch of the EGMT network, defaulting to the paper's sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import FusionError


@dataclass
class EGMTConfig:
    """Hyper-parameters of :class:`engine.egmt.model.EGMT`.

    Paper (sec. IV-A-3): 32 shallow-feature channels, 16x16 non-overlapping patches, reconstructor
    64:32, 32:16, 16:1, entity features 768-d (CLIP ViT-L/14). The token length ``token_dim`` and the head
    counts are not given in the paper; 768 (the entity width) and 8 heads are our reading.
    ``configs/train_egmt_cpu.yaml`` states the reductions of the CPU model.
    """

    channels: int = 32               # shallow visual features per modality (paper: 32)
    patch_size: int = 16             # token = one non-overlapping patch (paper: 16x16)
    token_dim: int = 768             # L_t of Eq. 3 after the patch embedding
    channel_heads: int = 4           # heads of the channel-wise cross-attention (Eq. 2)
    token_heads: int = 8             # heads of the token-wise self-attention (Eq. 3)
    cgha_heads: int = 8              # heads of CGHA (Eq. 5-6)
    ffn_ratio: float = 2.0           # feed-forward width after each token attention (the paper's "FFN + LN")
    entity_dim: int = 768            # width of the entity text features (CLIP ViT-L/14: 768; ViT-B/32: 512)
    num_classes: int = 9             # labels of the multi-label head (the paper's MSRS: 9)
    mask_rate: float = 0.6           # fraction of flattened entity features zeroed in training (Eq. 8)
    recon_channels: tuple[int, ...] = (32, 16)  # reconstructor: 2C -> 32 -> 16 -> 1 (Eq. 7)
    # Ablation switches (the paper's Table VIII)
    use_channel_attention: bool = True   # "w/o CA"
    use_token_attention: bool = True     # "w/o TA"
    use_cgha: bool = True                # "w/o CGHA": no visual-entity interaction
    use_multitask: bool = True           # "w/o MT": no classification head, no L_cla

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recon_channels"] = list(self.recon_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "EGMTConfig":
        """Build from a mapping (YAML ``model:`` section); unknown keys are an error naming them."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FusionError(f"unknown EGMT model option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "recon_channels" in data:
            data["recon_channels"] = tuple(int(c) for c in data["recon_channels"])
        cfg = cls(**data)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.channels % self.channel_heads:
            raise FusionError(f"channels {self.channels} must be divisible by channel_heads {self.channel_heads}")
        for heads in (self.token_heads, self.cgha_heads):
            if self.token_dim % heads:
                raise FusionError(f"token_dim {self.token_dim} must be divisible by the attention heads ({heads})")
        if self.patch_size < 1 or self.channels < 1 or self.num_classes < 1:
            raise FusionError("patch_size, channels and num_classes must be positive")
        if not 0.0 <= self.mask_rate < 1.0:
            raise FusionError(f"mask_rate must be in [0, 1), got {self.mask_rate}")
        if len(self.recon_channels) != 2:
            raise FusionError("recon_channels needs two entries (the paper's 64:32, 32:16, 16:1 has 32 and 16)")
