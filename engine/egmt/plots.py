"""Training curves of an EGMT run (fusion terms, focal loss, task weights, validation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..m2pn.training_plots import _smooth


def plot_training(history: dict, path: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, val = history.get("steps", []), history.get("val", [])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if rows:
        steps = np.array([r["step"] for r in rows])
        window = max(1, len(rows) // 40)
        for axis, keys in ((axes[0], ("L_fus",)), (axes[1], ("L_int", "L_edge", "L_ssim", "L_cla")),
                           (axes[2], ("lambda_1", "lambda_2"))):
            for key in keys:
                if key in rows[0]:
                    v = np.array([r.get(key, np.nan) for r in rows], float)
                    axis.plot(steps, _smooth(v, window), label=key)
    for r in val:
        if "L_fus" in r:
            axes[0].plot(r["step"], r["L_fus"], "ko")
    if val and "L_fus" in val[0]:
        axes[0].plot([], [], "ko", label="validation L_fus")
    axes[0].set_title("fusion loss (Eq. 11)")
    axes[1].set_title("terms (smoothed)")
    axes[1].set_yscale("log")
    axes[2].set_title("task weights (Eq. 10)")
    for a in axes:
        a.set_xlabel("step")
        if a.lines:
            a.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
