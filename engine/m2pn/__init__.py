"""M2PN: memory-orchestrated multi-prompt learning network for infrared/visible fusion.

Public pieces: :class:`M2PNConfig`, :class:`M2PN`, :class:`M2PNOutput`, :func:`load_model`,
:func:`save_weights`. The registered ``m2pn`` fusion method lives in :mod:`engine.m2pn.method`.
"""

from .config import M2PNConfig
from .model import M2PN, M2PNOutput
from .weights import DEFAULT_WEIGHTS, load_model, save_weights

__all__ = ["M2PN", "M2PNConfig", "M2PNOutput", "load_model", "save_weights", "DEFAULT_WEIGHTS"]
