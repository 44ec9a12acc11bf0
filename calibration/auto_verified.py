"""Automatic alignment that is checked before it is trusted (what ``python -m calibration auto`` runs).

Three fits of :func:`calibration.orientation_fit.fit_orientation` on the same frames:

* on all the structure (the result),
* on the "black" tiles of a checkerboard only (fit A), and on the "white" tiles only (fit B), each
  refining the first fit's coarse candidates and choosing among them on its own (not from its answer).

The result is accepted only when

1. it is geometrically plausible (:class:`calibration.score.Bounds`),
2. the two half fits agree with each other and with the result (corner RMS within ``agree_px``): two
   independent halves of the scene pointing at the same mapping is what a real alignment looks like,
   and a spurious optimum rarely repeats on disjoint structure,
3. each half fit improves the alignment score (:mod:`calibration.score`) on the *other*, held-out half
   over the starting point (thermal resized onto the colour frame), by at least ``min_gain``: the fit
   must explain structure it never saw.

A result within ``still_px`` of the starting point is accepted as "already aligned" without condition 3
(nothing to improve; the fit moved nothing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .auto import prepare_frames
from .calibration_file import corner_rms
from .orientation_fit import OrientationFit, fit_orientation
from .score import AlignmentScorer, Bounds, geometry, geometry_problems
from .structure import checker_tiles

MIN_GAIN = 0.01     # held-out score gain each half must bring (the score is a correlation, 0..1)
AGREE_FRAC = 0.006  # half fits must agree within this fraction of the colour diagonal (4.8 px at 640x480) ...
AGREE_MIN_PX = 3.0  # ... but never less than this
TILES = 16          # the checkerboard that splits the structure into two halves is TILES x TILES
STILL_PX = 1.0      # a result this close to the start (corner RMS) is "already aligned"


@dataclass
class AutoVerdict:
    """Outcome of :func:`auto_calibrate`.

    Attributes:
        homography: (3, 3) thermal pixel -> colour pixel (the fit on all structure).
        accepted: whether it passed the checks; ``reason`` says why not (one line), or how it passed.
        score_before, score_after: held-out alignment score of the starting point and of the half fits
            (mean over the two halves, each scored on the half it did not see).
        score_full_before, score_full_after: the score over all structure, start and result (what `check` prints).
        halves_px: corner RMS between the two half fits; result_px: largest corner RMS between the result and a half.
        moved_px: corner RMS between the result and the starting point.
        geometry: scale, aspect, shear, rotation_deg, perspective, corner_motion(_px) of the result.
    """

    homography: np.ndarray
    accepted: bool
    reason: str
    score_before: float
    score_after: float
    score_full_before: float
    score_full_after: float
    halves_px: float
    result_px: float
    moved_px: float
    geometry: dict
    fit: OrientationFit
    seconds: float
    half_scores: list[tuple[float, float]] = field(default_factory=list)


def start_homography(ir_size: tuple[int, int], rgb_size: tuple[int, int]) -> np.ndarray:
    """The starting point: thermal resized onto the colour frame, (3, 3)."""
    return np.diag([rgb_size[0] / ir_size[0], rgb_size[1] / ir_size[1], 1.0])


def auto_calibrate(ir, rgb, bounds: Bounds | None = None, motion: str = "affine",
                   ir_mask: np.ndarray | None = None, rgb_mask: np.ndarray | None = None,
                   min_gain: float = MIN_GAIN, agree_px: float | None = None, tiles: int = TILES,
                   progress=None) -> AutoVerdict:
    """Fit, cross-check and judge a thermal -> colour homography.

    Args:
        ir, rgb: one image each, or two equally long lists of frames of a fixed rig (pairs by index).
        bounds: geometric plausibility limits (default :class:`Bounds`).
        ir_mask, rgb_mask: optional masks of usable pixels (combined with the automatic empty-border masks).
        agree_px: how far the half fits may disagree (corner RMS, colour pixels); default
            max(AGREE_MIN_PX, AGREE_FRAC * diagonal).
        progress: optional callable(str) told what is being fitted (long runs show progress).
    """
    t0 = time.perf_counter()
    bounds = bounds or Bounds()
    ir_frames, rgb_frames, ir_valid, rgb_valid = prepare_frames(ir, rgb, ir_mask, rgb_mask)
    ir_size = (ir_frames[0].shape[1], ir_frames[0].shape[0])
    rgb_size = (rgb_frames[0].shape[1], rgb_frames[0].shape[0])
    if agree_px is None:
        agree_px = max(AGREE_MIN_PX, AGREE_FRAC * float(np.hypot(*rgb_size)))
    tell = progress or (lambda _: None)

    tell("fitting on all structure")
    fit = fit_orientation(ir_frames, rgb_frames, ir_valid, rgb_valid, motion=motion)
    tile_a, tile_b = checker_tiles(ir_size, tiles)
    halves = []
    for label, tile in (("A", tile_a), ("B", tile_b)):
        tell(f"fitting on half {label} of the tiles")
        halves.append(fit_orientation(ir_frames, rgb_frames, ir_valid, rgb_valid, ir_region=tile, motion=motion,
                                      seeds=fit.seeds).homography)

    tell("scoring on held-out tiles")
    scorer = AlignmentScorer(ir_frames, rgb_frames, ir_valid, rgb_valid)
    start = start_homography(ir_size, rgb_size)
    h_all, (h_a, h_b) = fit.homography, halves
    # each half fit is scored on the tiles it did not see
    half_scores = [(scorer.score(start, tile_b), scorer.score(h_a, tile_b)),
                   (scorer.score(start, tile_a), scorer.score(h_b, tile_a))]
    before = float(np.mean([b for b, _ in half_scores]))
    after = float(np.mean([a for _, a in half_scores]))
    full_before, full_after = scorer.score(start), scorer.score(h_all)
    halves_px = corner_rms(h_a, h_b, rgb_size)
    result_px = max(corner_rms(h_all, h_a, rgb_size), corner_rms(h_all, h_b, rgb_size))
    moved_px = corner_rms(start, h_all, rgb_size)

    problems = geometry_problems(h_all, ir_size, rgb_size, bounds)
    gains = [a - b for b, a in half_scores]
    if problems:
        accepted, reason = False, "implausible geometry: " + "; ".join(problems)
    elif moved_px <= STILL_PX and halves_px <= agree_px:
        accepted, reason = True, f"already aligned (the fit moves the corners by {moved_px:.2f} px RMS)"
    elif not all(np.isfinite([before, after, halves_px])):
        accepted, reason = False, "not enough structure to fit and check on (featureless or mostly masked images)"
    elif halves_px > agree_px or result_px > agree_px:
        accepted, reason = False, (f"the two halves of the image disagree by {max(halves_px, result_px):.1f} px "
                                   f"(limit {agree_px:.1f} px): not enough structure common to both cameras")
    elif min(gains) < min_gain:
        accepted, reason = False, (f"no clear improvement on held-out structure (score {before:.3f} -> {after:.3f}, "
                                   f"worst half {min(gains):+.3f}, need +{min_gain:g})")
    else:
        accepted, reason = True, (f"held-out score {before:.3f} -> {after:.3f}, halves agree within "
                                  f"{max(halves_px, result_px):.2f} px")
    return AutoVerdict(homography=h_all, accepted=accepted, reason=reason, score_before=before, score_after=after,
                       score_full_before=full_before, score_full_after=full_after, halves_px=halves_px,
                       result_px=result_px, moved_px=moved_px, geometry=geometry(h_all, ir_size, rgb_size), fit=fit,
                       seconds=time.perf_counter() - t0, half_scores=half_scores)
