"""Quality evaluators of M2PN's memory bank (engine.quality): the no-reference score and the CLIP wiring."""

from __future__ import annotations

import json
import math
import time

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.color import to_gray, to_uint8
from engine.errors import FusionError, FusionInputError, WeightsError
from engine.imageio import list_images, read_image
from engine.paths import shared_data_dir
from engine.quality import (
    ClipQualityEvaluator,
    NoReferenceQualityEvaluator,
    QualityEvaluator,
    QualityEvaluatorError,
    build_quality_evaluator,
)
from engine.quality.noref import soft_histogram
from engine.quality.prompts import NEGATIVE_PROMPTS, NEGATIVE_PROMPTS_AS_PUBLISHED, POSITIVE_PROMPTS

PATCH = 128


def _best_patch(gray: np.ndarray) -> np.ndarray:
    """The most contrasty well-exposed PATCHxPATCH window (stride 32) of a (H, W) image in [0, 1].

    Chosen by std and mean only, not by the evaluator under test.
    """
    best, best_std = None, -1.0
    for y in range(0, gray.shape[0] - PATCH + 1, 32):
        for x in range(0, gray.shape[1] - PATCH + 1, 32):
            win = gray[y:y + PATCH, x:x + PATCH]
            if 0.35 < win.mean() < 0.65 and win.std() > best_std:
                best, best_std = win, float(win.std())
    assert best is not None, "no well-exposed window in the test image"
    return best


@pytest.fixture(scope="module")
def sharp_patch() -> np.ndarray:
    """(128, 128) float32: a real RoadScene visible patch when the data exists, else a synthetic texture."""
    data = shared_data_dir()
    if data is not None and (data / "roadscene" / "vi").is_dir():
        gray = to_gray(read_image(list_images(data / "roadscene" / "vi")[0]))
        return np.ascontiguousarray(_best_patch(gray))
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:PATCH, 0:PATCH].astype(np.float32)
    stripes = 0.5 + 0.25 * np.sign(np.sin(xx / 5.0)) * np.cos(yy / 9.0)
    blobs = cv2.GaussianBlur(rng.random((PATCH, PATCH)).astype(np.float32), (0, 0), 3)
    return np.clip(stripes + 0.6 * (blobs - blobs.mean()), 0, 1).astype(np.float32)


def _degraded(patch: np.ndarray) -> dict[str, np.ndarray]:
    """Blurred, darkened, flattened and noise-corrupted versions of a (H, W) patch in [0, 1]."""
    noise = np.random.default_rng(0).normal(0.0, 0.06, patch.shape).astype(np.float32)
    return {
        "blurred": cv2.GaussianBlur(patch, (0, 0), 2.0),
        "darkened": patch * 0.25,
        "flat": patch.mean() + (patch - patch.mean()) * 0.25,
        "noisy": np.clip(patch + noise, 0.0, 1.0),
    }


def _batch(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images).astype(np.float32))[:, None]


# --- the no-reference evaluator -------------------------------------------------------------------


def test_noref_prefers_sharp_well_exposed_patch_to_each_degradation(sharp_patch):
    evaluator = build_quality_evaluator()
    degraded = _degraded(sharp_patch)
    scores = evaluator(_batch(sharp_patch, *degraded.values()))
    original = float(scores[0])
    for (name, _), score in zip(degraded.items(), scores[1:].tolist()):
        assert original > score + 0.05, f"{name}: {score:.3f} not clearly below the original {original:.3f}"

    # each degradation is caught by the term meant for it
    terms = {k: v.tolist() for k, v in evaluator.logit_terms(_batch(sharp_patch, *degraded.values())).items()}
    orig, blurred, darkened, flat, noisy = range(5)
    assert terms["detail"][blurred] < terms["detail"][orig]
    assert terms["exposure"][darkened] < terms["exposure"][orig]
    assert terms["contrast"][flat] < terms["contrast"][orig]
    assert terms["information"][flat] < terms["information"][orig]
    assert terms["noise"][noisy] < terms["noise"][orig]


def test_noref_output_contract(sharp_patch):
    evaluator = build_quality_evaluator("noref")
    assert isinstance(evaluator, QualityEvaluator) and isinstance(evaluator, NoReferenceQualityEvaluator)
    assert evaluator.name == "noref" and evaluator.version == "noref-v1"
    assert list(evaluator.parameters()) == []

    rng = np.random.default_rng(3)
    images = [sharp_patch, np.zeros_like(sharp_patch), np.ones_like(sharp_patch),
              rng.random(sharp_patch.shape).astype(np.float32), *_degraded(sharp_patch).values()]
    batch = _batch(*images).requires_grad_(True)
    scores = evaluator(batch)
    assert scores.shape == (len(images),) and scores.dtype == torch.float32
    assert torch.all(scores > 0) and torch.all(scores < 1)
    assert not scores.requires_grad  # judged under no_grad: never part of the training graph

    again = evaluator(batch.detach())
    assert torch.equal(scores, again), "not deterministic"
    alone = evaluator(batch.detach()[2:3])
    assert torch.allclose(alone, scores[2:3], atol=1e-6), "an image's score depends on its batch mates"


def _reference_noref_score(x: torch.Tensor) -> torch.Tensor:
    """The frozen noref-v1 formula written out directly (dense soft histogram over all 32 bins)."""
    pad = F.pad(x, (1, 1, 1, 1), mode="reflect")
    sx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    gx, gy = F.conv2d(pad, sx[None, None]), F.conv2d(pad, sx.T[None, None])
    grad = (gx**2 + gy**2 + 1e-12).sqrt().mean(dim=(1, 2, 3))
    lap = F.conv2d(pad, torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])[None, None]).abs().mean(dim=(1, 2, 3))
    centers = (torch.arange(32) + 0.5) / 32
    p = torch.exp(-((x.flatten(1)[:, :, None] - centers) ** 2) / (2 * (0.5 / 32) ** 2)).sum(1)
    p = p / p.sum(1, keepdim=True)
    entropy = -(p * torch.log(p + 1e-12)).sum(1) / math.log(32)
    std, mean = x.std(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3))
    logit = (torch.log(std.clamp_min(1e-4) / 0.10) + torch.log(grad.clamp_min(1e-4) / 0.155)
             + 0.5 * (entropy - 0.70) / 0.10 - 0.5 * ((mean - 0.5) / 0.25) ** 2
             - F.relu(lap / (grad + 1e-3) - 0.25) / 0.10)
    return torch.sigmoid(logit)


def test_noref_matches_the_frozen_formula(sharp_patch):
    # The committed M2PN weights were trained with noref-v1: any speed-up must keep its values.
    batch = _batch(sharp_patch, *_degraded(sharp_patch).values())
    assert torch.allclose(build_quality_evaluator()(batch), _reference_noref_score(batch), atol=1e-5)


def test_windowed_soft_histogram_equals_the_all_bins_sum():
    x = torch.rand(3, 4096, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.1  # also outside [0, 1]
    x[0, :4] = torch.tensor([0.0, 1.0, 0.5, 1 / 32])  # bin edges and the ends
    centers = (torch.arange(32) + 0.5) / 32
    dense = torch.exp(-2.0 * ((x[:, :, None] - centers) * 32) ** 2).sum(1)
    assert torch.allclose(soft_histogram(x, 32), dense, rtol=1e-5, atol=1e-3)


def test_noref_is_fast_enough_for_every_training_step():
    evaluator = build_quality_evaluator()
    batch = torch.rand(16, 1, PATCH, PATCH, generator=torch.Generator().manual_seed(1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        evaluator(batch)  # warm-up
        cpu_seconds = []
        for _ in range(3):
            start = time.process_time()  # CPU time: robust to other jobs sharing the cores
            evaluator(batch)
            cpu_seconds.append(time.process_time() - start)
    finally:
        torch.set_num_threads(threads)
    # ~25 ms of CPU here; the bound catches a return to the all-bins histogram (~300 ms)
    assert min(cpu_seconds) < 0.15, f"{min(cpu_seconds) * 1000:.0f} ms CPU per batch of 16 patches"


# --- building and errors -----------------------------------------------------------------------------


def test_build_rejects_unknown_kinds_and_options(tmp_path):
    with pytest.raises(QualityEvaluatorError, match="unknown quality evaluator 'lpips'.*noref, clip"):
        build_quality_evaluator("lpips")
    with pytest.raises(QualityEvaluatorError, match="takes no options"):
        build_quality_evaluator("noref", bins=64)
    with pytest.raises(QualityEvaluatorError, match="unknown option.*temperature"):
        build_quality_evaluator("clip", model_dir=tmp_path, temperature=2.0)
    with pytest.raises(QualityEvaluatorError, match="exactly one of model_dir"):
        build_quality_evaluator("clip")
    assert issubclass(QualityEvaluatorError, FusionError)


def test_clip_missing_weights_give_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-clip"
    with pytest.raises(WeightsError, match="CLIP weights not found at .*no-such-clip"):
        build_quality_evaluator("clip", model_dir=missing)
    with pytest.raises(WeightsError, match="config.json is missing"):
        build_quality_evaluator("clip", weights=tmp_path)


def test_bad_input_shapes_are_reported():
    evaluator = build_quality_evaluator()
    with pytest.raises(FusionInputError, match=r"\(B, 1, H, W\)"):
        evaluator(torch.rand(2, 3, 32, 32))
    with pytest.raises(FusionInputError, match="float"):
        evaluator(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))


def test_prompt_lists_follow_the_paper():
    assert len(POSITIVE_PROMPTS) == 3 and len(NEGATIVE_PROMPTS_AS_PUBLISHED) == 5
    # the published negative list repeats two positive prompts; the default list drops exactly those
    assert [p for p in NEGATIVE_PROMPTS_AS_PUBLISHED if p in POSITIVE_PROMPTS] == list(POSITIVE_PROMPTS[1:])
    assert len(NEGATIVE_PROMPTS) == 3 and not set(NEGATIVE_PROMPTS) & set(POSITIVE_PROMPTS)


# --- the CLIP evaluator, wired to a tiny random CLIP saved locally --------------------------------------


def _byte_level_alphabet() -> list[str]:
    """The 256 characters byte-level BPE (GPT-2, CLIP) uses for the byte values 0..255."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1))
    printable |= set(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


TINY_IMAGE_SIZE = 32


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    """A randomly initialised CLIP-architecture model and a char-level CLIP tokenizer, saved to a folder."""
    transformers = pytest.importorskip("transformers", reason="the clip extra (transformers) is not installed")
    folder = tmp_path_factory.mktemp("tiny_clip")
    alphabet = _byte_level_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")  # no merges: one token a character
    eos = vocab["<|endoftext|>"]
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=77,
                         bos_token_id=vocab["<|startoftext|>"], eos_token_id=eos, pad_token_id=eos),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=TINY_IMAGE_SIZE, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    transformers.CLIPModel(config).save_pretrained(folder)
    return folder


def _eq3_from_the_model(folder, images: torch.Tensor, negatives, scale: float = 1.0) -> torch.Tensor:
    """Eq. 3 recomputed from CLIPModel's own forward outputs (its normalised text and image embeddings)."""
    from transformers import CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(folder, local_files_only=True).eval()
    tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    prompts = list(POSITIVE_PROMPTS) + list(negatives)
    tokens = tokenizer(prompts, padding=True, truncation=True, max_length=77, return_tensors="pt")
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    pixels = (images.repeat(1, 3, 1, 1) - mean) / std  # images already at the model's size
    with torch.no_grad():
        out = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], pixel_values=pixels)
    t_pos = F.normalize(out.text_embeds[: len(POSITIVE_PROMPTS)].mean(0), dim=0)
    t_neg = F.normalize(out.text_embeds[len(POSITIVE_PROMPTS):].mean(0), dim=0)
    return torch.sigmoid(scale * (out.image_embeds @ t_pos - out.image_embeds @ t_neg))


def test_clip_evaluator_computes_eq3(tiny_clip_dir):
    evaluator = build_quality_evaluator("clip", model_dir=tiny_clip_dir)
    assert isinstance(evaluator, ClipQualityEvaluator) and evaluator.name == "clip"
    assert all(not p.requires_grad for p in evaluator.parameters())
    evaluator.train()
    assert not evaluator.training and not evaluator.clip.training  # a judge stays in eval mode

    images = torch.rand(5, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, generator=torch.Generator().manual_seed(2))
    scores = evaluator(images)
    assert scores.shape == (5,) and torch.all(scores > 0) and torch.all(scores < 1)
    assert torch.allclose(scores, _eq3_from_the_model(tiny_clip_dir, images, NEGATIVE_PROMPTS), atol=1e-5)
    assert torch.equal(scores, evaluator(images))

    published = build_quality_evaluator("clip", weights=tiny_clip_dir / "model.safetensors",
                                        negative_prompts="published", logit_scale=100.0)
    expected = _eq3_from_the_model(tiny_clip_dir, images, NEGATIVE_PROMPTS_AS_PUBLISHED, scale=100.0)
    assert torch.allclose(published(images), expected, atol=1e-4)


def test_clip_preprocessing_resizes_any_patch_to_the_model_size(tiny_clip_dir):
    evaluator = build_quality_evaluator("clip", model_dir=tiny_clip_dir)
    patches = torch.rand(3, 1, 128, 96)
    pixels = evaluator.preprocess(patches)
    assert pixels.shape == (3, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    assert torch.isfinite(pixels).all()
    # the three channels carry the same gray image, each under its own CLIP normalisation
    gray = pixels * evaluator.pixel_std + evaluator.pixel_mean
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=1e-5) and torch.allclose(gray[:, 0], gray[:, 2], atol=1e-5)
    assert evaluator(patches).shape == (3,)


def test_clip_rejects_bad_options(tiny_clip_dir):
    with pytest.raises(QualityEvaluatorError, match="negative prompt set 'strict'"):
        build_quality_evaluator("clip", model_dir=tiny_clip_dir, negative_prompts="strict")
    with pytest.raises(QualityEvaluatorError, match="logit_scale"):
        build_quality_evaluator("clip", model_dir=tiny_clip_dir, logit_scale=-1)
    with pytest.raises(QualityEvaluatorError, match="positive prompts"):
        build_quality_evaluator("clip", model_dir=tiny_clip_dir, positive_prompts=[])


# --- the calibration command ----------------------------------------------------------------------------


def test_calibrate_command_writes_table_json_and_plot(tmp_path, sharp_patch):
    from engine.imageio import write_image
    from engine.quality.calibrate import main

    data = tmp_path / "pairs"
    for side, image in (("ir", np.roll(sharp_patch, 40, axis=1) ** 0.7), ("vi", sharp_patch)):
        (data / side).mkdir(parents=True)
        write_image(data / side / "a.png", to_uint8(np.tile(image, (2, 2))))
    out = tmp_path / "out"
    assert main(["--data", str(data), "--patches", "16", "--out", str(out)]) == 0
    summary = json.loads((out / "scores.json").read_text())
    assert summary["evaluator"] == "noref-v1" and summary["patches"] == 16
    assert summary["scores"]["average + noise 0.08"]["median"] < summary["scores"]["average"]["median"]
    assert (out / "distributions.png").stat().st_size > 0 and "| average |" in (out / "scores.md").read_text()


def test_calibrate_command_reports_a_bad_folder(tmp_path, capsys):
    from engine.quality.calibrate import main

    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "must contain ir/ and vi/" in capsys.readouterr().err
