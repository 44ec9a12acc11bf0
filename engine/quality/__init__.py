"""Quality evaluators for M2PN's dynamic memory bank (Eq. 3).

``build_quality_evaluator(kind="noref", **options)``: ``"noref"`` (default, documented in
docs/quality_evaluator.md) or ``"clip"`` (CLIP weights from a local path).
"""

from __future__ import annotations

from ..errors import FusionError
from .base import QualityEvaluator
from .noref import NoReferenceQualityEvaluator


class QualityEvaluatorError(FusionError):
    """Unknown evaluator kind or bad options."""


def build_quality_evaluator(kind: str = "noref", **options) -> QualityEvaluator:
    if kind == "noref":
        if options:
            raise QualityEvaluatorError(f"the noref quality evaluator takes no options (got {', '.join(options)})")
        evaluator = NoReferenceQualityEvaluator()
    else:
        raise QualityEvaluatorError(f"unknown quality evaluator {kind!r}; available: noref")
    for p in evaluator.parameters():
        p.requires_grad_(False)
    return evaluator.eval()


__all__ = ["QualityEvaluator", "NoReferenceQualityEvaluator", "QualityEvaluatorError", "build_quality_evaluator"]
