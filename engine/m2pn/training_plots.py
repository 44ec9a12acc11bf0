"""Pictures of a training run: the loss curves and the memory-bank statistics (paper Figure 10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (window clipped to the series length). (n,) -> (n,)."""
    if len(values) == 0:
        return values
    window = max(1, min(window, len(values)))
    cumsum = np.cumsum(np.insert(values.astype(np.float64), 0, 0.0))
    out = np.empty(len(values))
    for i in range(len(values)):  # n is the number of steps (thousands at most)
        lo = max(0, i + 1 - window)
        out[i] = (cumsum[i + 1] - cumsum[lo]) / (i + 1 - lo)
    return out


def plot_losses(history: dict, path: str | Path) -> Path:
    """history["steps"]: list of {"step", "total", "L_w", ...}; history["val"]: list of {"step", "total"}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = history.get("steps", [])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    if rows:
        steps = np.array([r["step"] for r in rows])
        window = max(1, len(rows) // 50)
        for key in ("total", "L_w", "L_s", "L_ctr", "L_gate"):
            if key in rows[0]:
                values = np.array([r.get(key, np.nan) for r in rows], dtype=float)
                axis = axes[0] if key == "total" else axes[1]
                axis.plot(steps, values, alpha=0.2)
                axis.plot(steps, _smooth(values, window), label=key, color=axis.lines[-1].get_color())
    val = history.get("val", [])
    if val:
        axes[0].plot([v["step"] for v in val], [v["total"] for v in val], "o-", color="black", label="validation")
    axes[0].set_title("total loss (L_w + 15 L_s + L_ctr)")
    axes[1].set_title("loss terms")
    axes[1].set_yscale("log")
    for axis in axes:
        axis.set_xlabel("step")
        axis.legend()
        axis.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_memory_bank(history: dict, slot_updates: np.ndarray, path: str | Path) -> Path:
    """Figure 10-style statistics: threshold and quality over steps, updates per slot, quality histogram.

    history["memory"]: list of {"step", "threshold", "quality": [..], "accepted": [..]}.
    slot_updates: (N,) update count of each memory slot.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in history.get("memory", []) if r.get("quality")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    if rows:
        steps = np.array([r["step"] for r in rows])
        q_mean = np.array([np.mean(r["quality"]) for r in rows])
        tau = np.array([r["threshold"] for r in rows], dtype=float)
        axes[0].plot(steps, q_mean, alpha=0.5, label="batch mean quality Q")
        axes[0].plot(steps, tau, label="threshold tau (Eq. 4)")
        axes[0].legend()
        accepted = np.concatenate([np.asarray(r["quality"])[np.asarray(r["accepted"], bool)] for r in rows])
        rejected = np.concatenate([np.asarray(r["quality"])[~np.asarray(r["accepted"], bool)] for r in rows])
        bins = np.linspace(0, 1, 41)
        axes[2].hist(rejected, bins=bins, alpha=0.6, label=f"rejected ({len(rejected)})")
        axes[2].hist(accepted, bins=bins, alpha=0.6, label=f"stored ({len(accepted)})")
        axes[2].legend()
    axes[0].set_title("quality and adaptive threshold")
    axes[0].set_xlabel("step")
    axes[1].bar(np.arange(len(slot_updates)), slot_updates)
    axes[1].set_title(f"updates per memory slot (total {int(np.sum(slot_updates))})")
    axes[1].set_xlabel("slot")
    axes[2].set_title("quality score distribution")
    axes[2].set_xlabel("Q")
    for axis in axes:
        axis.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
