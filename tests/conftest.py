import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minidl

# No test reaches the internet: downloads are tested against a server on 127.0.0.1,
# in tests that lift this themselves.
os.environ["MINIDL_OFFLINE"] = "1"

# CI runs hypothesis derandomized, so a red run is reproducible; locally it explores.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=40)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def torch():
    """PyTorch as the oracle; tests that use it skip where it is not installed."""
    return pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _seeded():
    minidl.manual_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
