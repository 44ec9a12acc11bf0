"""The quality prompts of M2PN's CLIP evaluator (paper appendix A.2), as published and cleaned.

The published negative list repeats, word for word, the second and third *positive* prompts
("An excellent image showing sharp details, ..." and "A clear, well-defined image with ..."), almost
certainly a copy-and-paste slip: averaged into T_neg they pull the negative embedding towards the
positive one, which shrinks Sim(I, T_pos) - Sim(I, T_neg) for every image and blunts the score.
:data:`NEGATIVE_PROMPTS` (the default) drops those two; :data:`NEGATIVE_PROMPTS_AS_PUBLISHED` keeps the
list exactly as printed, for reproducing the paper to the letter (``negative_prompts="published"``).
"""

from __future__ import annotations

POSITIVE_PROMPTS: tuple[str, ...] = (
    "A high-quality image with clear contrast, sharp details, proper brightness, clean composition "
    "without noise or artifacts.",
    "An excellent image showing sharp details, accurate tones, optimal lighting, and no noise or artifacts.",
    "A clear, well-defined image with precise textures, natural brightness, and flawless composition "
    "without imperfections.",
)

NEGATIVE_PROMPTS_AS_PUBLISHED: tuple[str, ...] = (
    "Low-quality image with poor contrast, blurry details, improper brightness, significant noise and "
    "visible artifacts.",
    POSITIVE_PROMPTS[1],  # sic: a positive prompt in the paper's negative list
    POSITIVE_PROMPTS[2],  # sic
    "An unclear image with blurred edges, poor exposure, and visible grain or compression artifacts.",
    "Distorted image with dull contrast, missing details, uneven brightness, and distracting noise patterns.",
)

NEGATIVE_PROMPTS: tuple[str, ...] = tuple(p for p in NEGATIVE_PROMPTS_AS_PUBLISHED if p not in POSITIVE_PROMPTS)

NEGATIVE_PROMPT_SETS: dict[str, tuple[str, ...]] = {
    "clean": NEGATIVE_PROMPTS,
    "published": NEGATIVE_PROMPTS_AS_PUBLISHED,
}
