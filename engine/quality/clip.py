"""CLIP quality evaluator, the paper's own (sec. 3.2, Eq. 3), loaded from a LOCAL directory only.

    Q = sigmoid( logit_scale * ( cos(I_f, T_pos) - cos(I_f, T_neg) ) )

I_f is the CLIP image embedding of the fused image; T_pos / T_neg are the means of the (L2-normalised)
text embeddings of the positive / negative prompts of appendix A.2 (:mod:`engine.quality.prompts`).
``logit_scale=1`` (default) is Eq. 3 exactly as written, with plain cosine similarities: their difference
is small for real CLIP models, so scores sit close to 0.5, which the memory bank's adaptive threshold
(mean + kappa * std of past scores) handles. A larger scale (CLIP's own is 100) spreads them out.

The model directory is one written by ``CLIPModel.save_pretrained`` plus the tokenizer files
(``CLIPTokenizer.save_pretrained``, or just ``vocab.json`` + ``merges.txt``); ``preprocessor_config.json``
is read for the normalisation mean/std when present. Nothing is ever fetched from a model hub.
Needs the optional dependency ``transformers`` (``pip install -e .[clip]``); it is imported lazily.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import WeightsError
from .base import QualityEvaluator, QualityEvaluatorError, check_fused_batch, freeze
from .prompts import NEGATIVE_PROMPT_SETS, POSITIVE_PROMPTS

# OpenAI CLIP's normalisation (RGB order), used when the directory has no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def resolve_model_dir(model_dir: str | Path | None = None, weights: str | Path | None = None) -> Path:
    """The local CLIP directory named by ``model_dir``, or by ``weights`` (that directory, or a file in it).

    Raises:
        QualityEvaluatorError: neither or both given.
        WeightsError: the path is missing or holds no ``config.json``.
    """
    if (model_dir is None) == (weights is None):
        raise QualityEvaluatorError(
            "the clip quality evaluator needs exactly one of model_dir=<folder saved with "
            "CLIPModel.save_pretrained> or weights=<that folder or a weights file inside it>"
        )
    path = Path(model_dir if model_dir is not None else weights).expanduser()
    if not path.exists():
        raise WeightsError(
            f"CLIP weights not found at {path}: give a local folder saved with CLIPModel.save_pretrained "
            "(weights are never downloaded from a model hub here)"
        )
    folder = path if path.is_dir() else path.parent
    if not (folder / "config.json").is_file():
        raise WeightsError(f"{folder} is not a saved CLIP model: config.json is missing")
    return folder


def _import_transformers():
    try:
        from transformers import CLIPModel, CLIPTokenizer
    except ImportError as exc:
        raise QualityEvaluatorError(
            "the clip quality evaluator needs the optional package 'transformers': pip install -e .[clip]"
        ) from exc
    return CLIPModel, CLIPTokenizer


def _read_normalisation(folder: Path) -> tuple[Sequence[float], Sequence[float]]:
    """(mean, std) per RGB channel from preprocessor_config.json, else OpenAI CLIP's."""
    cfg_path = folder / "preprocessor_config.json"
    if not cfg_path.is_file():
        return CLIP_MEAN, CLIP_STD
    try:
        cfg = json.loads(cfg_path.read_text())
        mean, std = cfg.get("image_mean", CLIP_MEAN), cfg.get("image_std", CLIP_STD)
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot read {cfg_path}: {exc}") from exc
    if len(mean) != 3 or len(std) != 3:
        raise WeightsError(f"{cfg_path}: image_mean and image_std must have 3 values each")
    return mean, std


class ClipQualityEvaluator(QualityEvaluator):
    """Eq. 3 with a frozen local CLIP. fused (B, 1, H, W) in [0, 1] -> (B,) in (0, 1).

    Args:
        model_dir / weights: the local CLIP folder (see :func:`resolve_model_dir`).
        negative_prompts: "clean" (default: the published list minus its two positive prompts),
            "published" (exactly as printed), or a custom list of strings.
        positive_prompts: custom positive prompts (default: the paper's three).
        logit_scale: multiplies the similarity difference before the sigmoid; 1.0 is Eq. 3 as written.
    """

    name = "clip"

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        weights: str | Path | None = None,
        negative_prompts: str | Sequence[str] = "clean",
        positive_prompts: Sequence[str] | None = None,
        logit_scale: float = 1.0,
    ) -> None:
        super().__init__()
        folder = resolve_model_dir(model_dir, weights)
        positives = _prompt_list(POSITIVE_PROMPTS if positive_prompts is None else positive_prompts, "positive")
        if isinstance(negative_prompts, str):
            if negative_prompts not in NEGATIVE_PROMPT_SETS:
                raise QualityEvaluatorError(
                    f"unknown negative prompt set {negative_prompts!r}; use one of "
                    f"{', '.join(NEGATIVE_PROMPT_SETS)} or a list of strings"
                )
            negatives = list(NEGATIVE_PROMPT_SETS[negative_prompts])
        else:
            negatives = _prompt_list(negative_prompts, "negative")
        try:
            logit_scale = float(logit_scale)
        except (TypeError, ValueError):
            raise QualityEvaluatorError(f"logit_scale must be a positive number, got {logit_scale!r}") from None
        if not logit_scale > 0:
            raise QualityEvaluatorError(f"logit_scale must be a positive number, got {logit_scale}")

        CLIPModel, CLIPTokenizer = _import_transformers()
        try:
            self.clip = CLIPModel.from_pretrained(folder, local_files_only=True)
            tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise WeightsError(f"cannot load the CLIP model or tokenizer from {folder}: {exc}") from exc
        freeze(self.clip)
        self.model_dir = folder
        self.logit_scale = logit_scale
        prompt_set = negative_prompts if isinstance(negative_prompts, str) and positive_prompts is None else "custom"
        self.version = f"clip:{folder.name}:{prompt_set}:scale{logit_scale:g}"  # e.g. clip:clip-vit-b32:clean:scale1
        self.image_size = int(self.clip.config.vision_config.image_size)
        mean, std = _read_normalisation(folder)
        self.register_buffer("pixel_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        max_len = int(self.clip.config.text_config.max_position_embeddings)
        # Text embeddings never change: compute them once and keep them as (D,) buffers.
        self.register_buffer("text_pos", self._mean_text_embedding(tokenizer, positives, max_len), persistent=False)
        self.register_buffer("text_neg", self._mean_text_embedding(tokenizer, negatives, max_len), persistent=False)

    @torch.no_grad()
    def _mean_text_embedding(self, tokenizer, prompts: Sequence[str], max_len: int) -> Tensor:
        """Prompts -> (D,) unit vector: the mean of the prompts' unit-norm CLIP text embeddings."""
        tokens = tokenizer(list(prompts), padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        text = self.clip.text_model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        pooled = text.pooler_output
        emb = F.normalize(self.clip.text_projection(pooled), dim=-1)
        return F.normalize(emb.mean(0), dim=0)

    def preprocess(self, fused: Tensor) -> Tensor:
        """(B, 1, H, W) gray in [0, 1] -> (B, 3, S, S) CLIP pixel values, S the model's image size.

        Same steps as CLIP's image processor, in torch: shorter side resized to S (bicubic, antialiased),
        centre crop to S x S, gray copied to R, G and B, then the per-channel mean/std normalisation.
        """
        x = fused.to(self.pixel_mean)
        h, w = x.shape[-2:]
        scale = self.image_size / min(h, w)
        new_h, new_w = max(self.image_size, round(h * scale)), max(self.image_size, round(w * scale))
        x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True)
        top, left = (new_h - self.image_size) // 2, (new_w - self.image_size) // 2
        x = x[..., top:top + self.image_size, left:left + self.image_size].clamp(0.0, 1.0)
        return (x.expand(-1, 3, -1, -1) - self.pixel_mean) / self.pixel_std

    @torch.no_grad()
    def image_embedding(self, fused: Tensor) -> Tensor:
        """(B, 1, H, W) -> (B, D) unit-norm CLIP image embeddings."""
        pooled = self.clip.vision_model(pixel_values=self.preprocess(fused)).pooler_output
        return F.normalize(self.clip.visual_projection(pooled), dim=-1)

    @torch.no_grad()
    def forward(self, fused: Tensor) -> Tensor:
        check_fused_batch(fused)
        img = self.image_embedding(fused)
        diff = img @ self.text_pos - img @ self.text_neg   # cosine similarities: all vectors unit norm
        return torch.sigmoid(self.logit_scale * diff)


def _prompt_list(prompts: Sequence[str], which: str) -> list[str]:
    if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise QualityEvaluatorError(f"{which} prompts must be a non-empty list of non-empty strings")
    return list(prompts)
