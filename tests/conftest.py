"""Shared fixtures. Tests that need the real datasets use ``shared_data`` and skip, with the reason,
when ``../shared/data`` is not beside the checkout."""

from __future__ import annotations

import os

# Before any test imports Qt or torch: no display in CI, and keep torch to the 2 cores CI has.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

from engine.paths import shared_data_dir


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


@pytest.fixture(scope="session")
def shared_data():
    """Path of ../shared/data, or skip the test when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("needs the real IR/VIS datasets at ../shared/data (or IRVIS_DATA_DIR); not present here")
    return path


@pytest.fixture(scope="session")
def tno_dir(shared_data):
    path = shared_data / "tno"
    if not (path / "ir").is_dir():
        pytest.skip(f"TNO pairs not found at {path}")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


requires_cuda = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA device; none on this machine")
