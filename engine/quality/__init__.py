"""Quality evaluators for M2PN's dynamic memory bank (paper sec. 3.2, Eq. 3).

``build_quality_evaluator(kind="noref", **options)`` returns a frozen :class:`QualityEvaluator`
mapping fused images (B, 1, H, W) in [0, 1] to scores (B,) in (0, 1):

* ``"noref"`` (default): :class:`NoReferenceQualityEvaluator`, a fixed no-reference score of contrast,
  detail, information, exposure and noise; no options. The default because CLIP weights cannot be
  downloaded here; see docs/quality_evaluator.md.
* ``"clip"``: :class:`ClipQualityEvaluator`, the paper's CLIP score from a local folder; options
  ``model_dir`` or ``weights``, ``negative_prompts``, ``positive_prompts``, ``logit_scale``.
  Needs ``transformers`` (the ``clip`` extra), imported only when this kind is built.
"""

from __future__ import annotations

from .base import QualityEvaluator, QualityEvaluatorError, freeze
from .clip import ClipQualityEvaluator  # transformers itself is imported only when one is built
from .noref import NoReferenceQualityEvaluator

QUALITY_EVALUATOR_KINDS = ("noref", "clip")
_CLIP_OPTIONS = {"model_dir", "weights", "negative_prompts", "positive_prompts", "logit_scale"}


def build_quality_evaluator(kind: str = "noref", **options) -> QualityEvaluator:
    """Build a frozen evaluator of the given kind (see the module docstring for kinds and options).

    Raises:
        QualityEvaluatorError: unknown kind, unknown option, or a bad option value.
        WeightsError: (clip) the model folder is missing or unreadable.
    """
    if kind == "noref":
        if options:
            raise QualityEvaluatorError(
                f"the noref quality evaluator takes no options (got {', '.join(sorted(options))})"
            )
        evaluator: QualityEvaluator = NoReferenceQualityEvaluator()
    elif kind == "clip":
        unknown = set(options) - _CLIP_OPTIONS
        if unknown:
            raise QualityEvaluatorError(
                f"unknown option(s) for the clip quality evaluator: {', '.join(sorted(unknown))}; "
                f"valid: {', '.join(sorted(_CLIP_OPTIONS))}"
            )
        evaluator = ClipQualityEvaluator(**options)
    else:
        raise QualityEvaluatorError(
            f"unknown quality evaluator {kind!r}; available: {', '.join(QUALITY_EVALUATOR_KINDS)}"
        )
    return freeze(evaluator)


__all__ = [
    "QUALITY_EVALUATOR_KINDS",
    "ClipQualityEvaluator",
    "NoReferenceQualityEvaluator",
    "QualityEvaluator",
    "QualityEvaluatorError",
    "build_quality_evaluator",
]
