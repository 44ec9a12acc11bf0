"""The attention blocks of ECIM (paper sec. III-B, Eq. 1-6).

* :class:`ChannelCrossAttention` — Eq. 1-2: multi-head cross-attention across the channel axis inside
  non-overlapping windows; queries from one modality, keys/values from the other.
* :class:`TokenSelfAttention` — Eq. 3: each non-overlapping patch is one token; multi-head
  self-attention over all tokens of an image, then a feed-forward layer (the "FFN + LN" the paper omits
  from its equations).
* :class:`CGHA` — Eq. 4-6: cross-modal guided hybrid attention; visual tokens attend to entity features
  (Eq. 5), then the entity-weighted tokens attend back to the visual tokens (Eq. 6).

All attention is scaled dot-product, ``softmax(Q K^T / sqrt(d_k)) V``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """``softmax(q k^T / sqrt(d_k)) v``; q (..., Lq, d), k/v (..., Lk, d); mask (..., Lq|1, Lk) bool, True = attend."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def attention_weights(q: Tensor, k: Tensor, mask: Tensor | None = None) -> Tensor:
    """The softmax matrix of :func:`attention` (for tests and heat maps): (..., Lq, Lk), rows sum to 1."""
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1)


def to_windows(x: Tensor, p: int) -> Tensor:
    """(B, C, H, W) -> (B, nH*nW, C, p*p): non-overlapping p x p windows (H, W multiples of p)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c, p * p)


def from_windows(x: Tensor, h: int, w: int, p: int) -> Tensor:
    """Inverse of :func:`to_windows`: (B, nH*nW, C, p*p) -> (B, C, H, W)."""
    b, _, c, _ = x.shape
    x = x.reshape(b, h // p, w // p, c, p, p).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, h, w)


class ChannelCrossAttention(nn.Module):
    """Eq. 1-2 for one direction: ``Phi_ic^a = MCA(Q^a, K^b, V^b) + Phi_s^a``.

    Inside each p x p window, every head's channels are the sequence (length C/heads) and the window's
    p*p pixels are the feature vector, so the attention matrix is (C/heads x C/heads): which channels of
    the other modality each channel of this one draws from.
    Input/output: (B, C, H, W), H and W multiples of ``window``.
    """

    def __init__(self, channels: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.q = nn.Conv2d(channels, channels, 1)
        self.kv = nn.Conv2d(channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        b, c, h, w = x.shape
        p, n = self.window, self.heads
        q = to_windows(self.q(x), p)                            # (B, N, C, p*p)
        k, v = (to_windows(t, p) for t in self.kv(other).chunk(2, dim=1))
        split = lambda t: t.reshape(b, t.shape[1], n, c // n, p * p)  # (B, N, heads, C/heads, p*p)
        y = attention(split(q), split(k), split(v)).reshape(b, -1, c, p * p)
        return x + self.out(from_windows(y, h, w, p))


class PatchTokens(nn.Module):
    """Patch embedding and its inverse: (B, C, H, W) <-> (B, T, d), T = (H/p)(W/p), one token per patch."""

    def __init__(self, channels: int, patch: int, dim: int) -> None:
        super().__init__()
        self.patch = patch
        self.norm = nn.LayerNorm(channels * patch * patch)
        self.embed = nn.Linear(channels * patch * patch, dim)
        self.unembed = nn.Linear(dim, channels * patch * patch)
        nn.init.zeros_(self.unembed.weight)  # the token path starts as identity on the residual stream
        nn.init.zeros_(self.unembed.bias)

    def tokens(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        p = self.patch
        patches = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * p * p)
        return self.embed(self.norm(patches))

    def image(self, t: Tensor, c: int, h: int, w: int) -> Tensor:
        b, p = t.shape[0], self.patch
        x = self.unembed(t).reshape(b, h // p, w // p, c, p, p).permute(0, 3, 1, 4, 2, 5)
        return x.reshape(b, c, h, w)


class MultiHead(nn.Module):
    """Multi-head attention with separate query and key/value inputs: (B, Lq, d) x (B, Lk, d) -> (B, Lq, d)."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def split(self, t: Tensor) -> Tensor:
        b, n, d = t.shape
        return t.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)   # (B, heads, n, d/heads)

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor | None = None) -> Tensor:
        q = self.split(self.q(query))
        k, v = (self.split(t) for t in self.kv(keys).chunk(2, dim=-1))
        y = attention(q, k, v, None if mask is None else mask[:, None, None, :])
        return self.out(y.transpose(1, 2).reshape(query.shape))


class FeedForward(nn.Module):
    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = max(1, int(dim * ratio))
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class TokenSelfAttention(nn.Module):
    """Eq. 3 on tokens: ``t + MSA(LN t)`` followed by the feed-forward layer. (B, T, d) -> (B, T, d)."""

    def __init__(self, dim: int, heads: int, ffn_ratio: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.msa = MultiHead(dim, heads)
        self.ffn = FeedForward(dim, ffn_ratio)

    def forward(self, t: Tensor) -> Tensor:
        n = self.norm(t)
        return self.ffn(t + self.msa(n, n))


class CGHA(nn.Module):
    """Cross-modal guided hybrid attention (Eq. 4-6) for one modality.

    Eq. 5: visual tokens are queries over the entity features (keys/values): each token takes the entities
    that match its content, so entities absent from the image get little weight.
    Eq. 6: the entity-weighted tokens are queries over the visual tokens (keys/values).
    A learned "no entity" feature is always among the keys of Eq. 5, so a frame without entities (or
    tokens that match none) has somewhere to put its attention (our addition; the paper always has 2-8).

    Shapes: tokens (B, T, d); entities (B, E, d) already projected by the shared entity FC; entity_mask
    (B, E) bool (False = padding). Output (B, T, d).
    """

    def __init__(self, dim: int, heads: int, ffn_ratio: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.null_entity = nn.Parameter(torch.zeros(1, 1, dim))
        self.visual_to_entity = MultiHead(dim, heads)    # Eq. 4-5
        self.entity_to_visual = MultiHead(dim, heads)    # Eq. 6
        self.ffn = FeedForward(dim, ffn_ratio)

    def forward(self, tokens: Tensor, entities: Tensor, entity_mask: Tensor) -> Tensor:
        b = tokens.shape[0]
        keys = torch.cat([self.null_entity.expand(b, -1, -1), entities], dim=1)
        mask = torch.cat([entity_mask.new_ones(b, 1), entity_mask], dim=1)
        n = self.norm(tokens)
        weighted = self.visual_to_entity(n, keys, mask)          # Phi_{m,en}^text, (B, T, d)
        guided = self.entity_to_visual(weighted, n)              # Phi_{en,m}^m, (B, T, d)
        return self.ffn(tokens + guided)
