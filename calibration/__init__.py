"""Registration of thermal and visible cameras: calibration files, the registrar that warps frames,
and the tools that make calibration files (point pairs, checkerboard, automatic alignment).

Knows geometry only: no Qt, no torch.
"""
