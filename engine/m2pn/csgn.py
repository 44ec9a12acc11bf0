"""Cross-Modal Semantic Graph Network (paper sec. 3.2, Eq. 1).

For each modality m in {ir, vi} a three-node graph with nodes Theta_m, Theta_f, Theta_M, each
``h = Proj(GAP(Phi))``. Messages pass by multi-head *additive* attention (Eq. 1): the score of node j for
node i is ``CAT(Q_i, K_j) . W_attn / sqrt(d_k)``. IR and VIS have their own attention layers and give
the modality prompts G_ir and G_vi (the updated modality node).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NodeProjection(nn.Module):
    """``Proj(GAP(Phi))``: global average pooling, then a two-layer MLP.

    Shapes: (B, C, H, W) -> (B, D).
    """

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, features: Tensor) -> Tensor:
        return self.mlp(features.mean(dim=(2, 3)))


class AdditiveGraphAttention(nn.Module):
    """Multi-head additive attention over graph nodes (Eq. 1).

    ``e_ij = LeakyReLU(CAT(Q_i, K_j) . W_attn) / sqrt(d_k)``, ``a_ij = softmax_j(e_ij)``,
    ``h_i' = LayerNorm(h_i + W_o CAT_heads(sum_j a_ij V_j))``.

    Why the LeakyReLU: without a non-linearity ``CAT(Q_i, K_j) . W_attn = Q_i . w_q + K_j . w_k`` and the
    query term is constant over j, so the softmax would discard it and every node would get the same
    weights (the reason GAT applies one too). Eq. 1 is kept otherwise.

    Shapes: nodes (B, n, D) -> (updated nodes (B, n, D), attention (B, heads, n, n)).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        # W_attn: one 2*d_k -> 1 vector per head
        self.w_attn = nn.Parameter(torch.randn(heads, 2 * self.head_dim) * (2 * self.head_dim) ** -0.5)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        b, n, d = nodes.shape
        split = lambda t: t.view(b, n, self.heads, self.head_dim).transpose(1, 2)  # (B, h, n, dk)
        q, k, v = split(self.q(nodes)), split(self.k(nodes)), split(self.v(nodes))
        w_q, w_k = self.w_attn[:, : self.head_dim], self.w_attn[:, self.head_dim :]   # (h, dk) each
        # CAT(Q_i, K_j) . W_attn = Q_i . w_q + K_j . w_k, computed for all (i, j) by broadcasting
        score_q = torch.einsum("bhnd,hd->bhn", q, w_q)
        score_k = torch.einsum("bhnd,hd->bhn", k, w_k)
        scores = F.leaky_relu(score_q[..., :, None] + score_k[..., None, :], 0.2) / self.head_dim**0.5
        attention = scores.softmax(dim=-1)                                              # (B, h, n, n)
        mixed = (attention @ v).transpose(1, 2).reshape(b, n, d)
        return self.norm(nodes + self.out(mixed)), attention


class CSGN(nn.Module):
    """Builds the IR and VIS graphs and returns the modality prompts.

    Inputs: Phi_ir, Phi_vi (B, C, H, W), Phi_f (B, C, H, W), Phi_M (B, C_M, H, W).
    Returns: G_ir, G_vi (B, D).

    With ``use_graph=False`` (ablation Case 4, w/o CSGN) G_m is just the projected modality node; with
    ``residual_channels=0`` (ablation w/o residual) the graphs have two nodes and Phi_M is None.
    """

    def __init__(self, channels: int, residual_channels: int, dim: int, heads: int, use_graph: bool = True) -> None:
        super().__init__()
        self.use_graph = use_graph
        self.proj_ir = NodeProjection(channels, dim)
        self.proj_vi = NodeProjection(channels, dim)
        if use_graph:
            self.proj_f = NodeProjection(channels, dim)
            self.proj_m = NodeProjection(residual_channels, dim) if residual_channels else None
            self.attn_ir = AdditiveGraphAttention(dim, heads)
            self.attn_vi = AdditiveGraphAttention(dim, heads)

    def forward(self, phi_ir: Tensor, phi_vi: Tensor, phi_f: Tensor, phi_m: Tensor | None) -> tuple[Tensor, Tensor]:
        h_ir, h_vi = self.proj_ir(phi_ir), self.proj_vi(phi_vi)
        if not self.use_graph:
            return h_ir, h_vi
        shared = [self.proj_f(phi_f)]
        if self.proj_m is not None and phi_m is not None:
            shared.append(self.proj_m(phi_m))
        nodes_ir, _ = self.attn_ir(torch.stack([h_ir, *shared], dim=1))  # (B, 3, D), or (B, 2, D) w/o residual
        nodes_vi, _ = self.attn_vi(torch.stack([h_vi, *shared], dim=1))
        return nodes_ir[:, 0], nodes_vi[:, 0]
