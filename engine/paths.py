"""Where the project finds things: its committed weights and the shared research data."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"


def shared_data_dir() -> Path | None:
    """The folder of real IR/VIS datasets (``../shared/data`` beside the checkout), or None if absent.

    ``IRVIS_DATA_DIR`` overrides the location. The application never needs it: it is for training,
    evaluation, benchmarks and tests.
    """
    override = os.environ.get("IRVIS_DATA_DIR")
    candidates = [Path(override)] if override else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None
