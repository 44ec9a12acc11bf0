"""Classical fusion baselines (registered on import): average, max, laplacian, gff, tif.

They work on float32 luminance in [0, 1] with vectorised OpenCV/NumPy code, fast enough at 640x480 to
double as real-time fallbacks. ``guided_filter`` is shared with other methods.
"""

from . import gff, laplacian, simple, tif
from .guided_filter import box_mean, guided_filter

__all__ = ["box_mean", "gff", "guided_filter", "laplacian", "simple", "tif"]
