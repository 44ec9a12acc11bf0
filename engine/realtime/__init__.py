"""Real-time M2PN: the network at reduced resolution, its decision carried to full resolution by
edge-aware two-guide guided upsampling (:mod:`engine.realtime.guided`), on the fastest backend available.

The registered ``m2pn_rt`` method lives in :mod:`engine.realtime.method`.
"""

from .guided import LinearCoefficients, fit_two_guide, guided_upsample, low_resolution_model

__all__ = ["LinearCoefficients", "fit_two_guide", "guided_upsample", "low_resolution_model"]
