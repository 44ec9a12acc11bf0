"""Feature extraction (paper sec. 3.1): the Siamese DenseEncoder and the residual encoder."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    # Reflection padding keeps borders free of the dark frame zero padding would teach the network.
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect")


class DenseEncoder(nn.Module):
    """DenseFuse-style encoder, shared (Siamese) between IR and VIS.

    A stem conv, then ``layers`` 3x3 convs where each layer sees the concatenation of all earlier
    outputs (dense connectivity). Resolution is kept (no pooling) so details survive.

    Shapes: (B, 1, H, W) -> (B, stem + layers * growth, H, W).
    """

    def __init__(self, stem: int = 16, growth: int = 16, layers: int = 3) -> None:
        super().__init__()
        self.stem = conv3x3(1, stem)
        self.dense = nn.ModuleList(conv3x3(stem + i * growth, growth) for i in range(layers))
        self.act = nn.LeakyReLU(0.1, inplace=False)
        self.out_channels = stem + layers * growth

    def forward(self, x: Tensor) -> Tensor:
        feats = self.act(self.stem(x))
        for layer in self.dense:
            feats = torch.cat([feats, self.act(layer(feats))], dim=1)
        return feats


class ResidualEncoder(nn.Module):
    """Two conv layers on the residual map M = IR - VIS (its values lie in [-1, 1]).

    Shapes: (B, 1, H, W) -> (B, channels, H, W) = Phi_M.
    """

    def __init__(self, channels: int = 32, hidden: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(1, hidden), nn.LeakyReLU(0.1), conv3x3(hidden, channels), nn.LeakyReLU(0.1))
        self.out_channels = channels

    def forward(self, residual: Tensor) -> Tensor:
        return self.body(residual)
