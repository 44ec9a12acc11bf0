"""Multi-label classification metrics of the paper's Table V: Hamming loss, ranking loss, mAP, AUC,
Jaccard index and F1 (NumPy only). ``targets`` (N, K) in {0, 1}; ``probs`` (N, K) in [0, 1]."""

from __future__ import annotations

import numpy as np


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """AP of one class: mean precision at the rank of each positive (ties broken by order). NaN without positives."""
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-score, kind="stable")
    hits = y[order] > 0.5
    precision = np.cumsum(hits) / np.arange(1, len(y) + 1)
    return float(precision[hits].mean())


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of one class (Mann-Whitney U with tied ranks averaged); NaN if one-sided."""
    pos, neg = y > 0.5, y <= 0.5
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan")
    ranks = _average_ranks(score)
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * neg.sum()))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), float)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def ranking_loss(targets: np.ndarray, probs: np.ndarray) -> float:
    """Share of (positive, negative) label pairs ordered wrongly, averaged over samples with both kinds."""
    losses = []
    for y, p in zip(targets, probs):
        pos, neg = p[y > 0.5], p[y <= 0.5]
        if len(pos) and len(neg):
            losses.append(float((pos[:, None] <= neg[None, :]).mean()))
    return float(np.mean(losses)) if losses else float("nan")


def multilabel_metrics(targets: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """HL, RL, mAP and AUC (means over the classes that have positives), JI and F1 (sample averages)."""
    targets, probs = np.asarray(targets, float), np.asarray(probs, float)
    pred = probs >= threshold
    truth = targets > 0.5
    aps = [average_precision(targets[:, k], probs[:, k]) for k in range(targets.shape[1])]
    aucs = [roc_auc(targets[:, k], probs[:, k]) for k in range(targets.shape[1])]
    inter = (pred & truth).sum(1)
    union = (pred | truth).sum(1)
    ji = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    denom = pred.sum(1) + truth.sum(1)
    f1 = np.where(denom > 0, 2 * inter / np.maximum(denom, 1), 1.0)
    nan_mean = lambda v: round(float(np.nanmean(v)), 4) if np.isfinite(v).any() else float("nan")
    return {"HL": round(float((pred != truth).mean()), 4), "RL": round(ranking_loss(targets, probs), 4),
            "mAP": nan_mean(np.array(aps)), "AUC": nan_mean(np.array(aucs)),
            "JI": round(float(ji.mean()), 4), "F1": round(float(f1.mean()), 4)}
