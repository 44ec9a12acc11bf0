"""Small annotators that draw on a BGR frame, independent of whatever produced what they draw.

``draw_detections`` takes anything with ``x1, y1, x2, y2, score, label, class_id`` attributes
(e.g. :class:`app.detector.Detection`), so the detector and the drawing never depend on each other.
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

# A fixed, well-separated colour per class id (BGR), cycled for ids beyond the table.
CLASS_COLOURS: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
    (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
    (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203),
)


def class_colour(class_id: int) -> tuple[int, int, int]:
    return CLASS_COLOURS[int(class_id) % len(CLASS_COLOURS)]


def _scale_for(frame: np.ndarray) -> tuple[float, int]:
    """Font scale and line thickness that stay readable from 320 to 4K pixels wide."""
    side = max(frame.shape[:2])
    return max(0.35, side / 1400.0), max(1, int(round(side / 500.0)))


def draw_detections(frame: np.ndarray, detections: Iterable, show_scores: bool = True,
                    copy: bool = True) -> np.ndarray:
    """Boxes with "label 0.87" tags.

    Args:
        frame: (H, W, 3) uint8 BGR.
        detections: objects with x1, y1, x2, y2 (frame pixels), score, label, class_id.
        copy: draw on a copy (default) or on ``frame`` in place.
    Returns:
        the annotated (H, W, 3) uint8 frame.
    """
    out = frame.copy() if copy else frame
    font_scale, thick = _scale_for(out)
    for det in detections:
        colour = class_colour(det.class_id)
        p1, p2 = (int(det.x1), int(det.y1)), (int(det.x2), int(det.y2))
        cv2.rectangle(out, p1, p2, colour, thick, cv2.LINE_AA)
        text = f"{det.label} {det.score:.2f}" if show_scores else str(det.label)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, thick - 1))
        # Tag above the box, or inside it when the box touches the top edge.
        y_text = p1[1] - 3 if p1[1] - th - base - 3 >= 0 else p1[1] + th + 3
        cv2.rectangle(out, (p1[0], y_text - th - 3), (p1[0] + tw + 4, y_text + base - 1), colour, -1)
        cv2.putText(out, text, (p1[0] + 2, y_text - 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255),
                    max(1, thick - 1), cv2.LINE_AA)
    return out


def draw_text_lines(frame: np.ndarray, lines: Iterable[str], origin: tuple[int, int] = (8, 8),
                    copy: bool = True) -> np.ndarray:
    """Lines of white text on a translucent dark panel at ``origin`` (top-left): a HUD for headless videos."""
    out = frame.copy() if copy else frame
    lines = list(lines)
    if not lines:
        return out
    font_scale, thick = _scale_for(out)
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, thick - 1))[0] for t in lines]
    line_h = max(h for _, h in sizes) + 6
    x0, y0 = origin
    x1 = min(out.shape[1], x0 + max(w for w, _ in sizes) + 10)
    y1 = min(out.shape[0], y0 + line_h * len(lines) + 6)
    panel = out[y0:y1, x0:x1]
    panel[:] = (panel * 0.45).astype(np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(out, text, (x0 + 5, y0 + (i + 1) * line_h), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (255, 255, 255), max(1, thick - 1), cv2.LINE_AA)
    return out
