import os
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minidl

# No test reaches the internet: downloads are tested against a server on 127.0.0.1,
# in tests that lift this themselves.
os.environ["MINIDL_OFFLINE"] = "1"

# CI runs hypothesis derandomized, so a red run is reproducible; locally it explores.
# HYPOTHESIS_PROFILE picks another profile: "random" runs the CI examples from a
# fresh seed, printed at the end of the run (pass it back with --hypothesis-seed to
# repeat the run), so a tolerance that holds only for the derandomized examples
# shows up.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "random",
    settings.get_profile("ci"),
    derandomize=False,
    database=None,  # every run draws new examples instead of replaying old failures
    print_blob=True,
)
settings.register_profile("dev", deadline=None, max_examples=40)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # before hypothesis's own pytest_configure, which applies --hypothesis-seed
    if settings.get_current_profile_name() == "random":
        if config.getoption("hypothesis_seed", None) is None:
            config.option.hypothesis_seed = str(random.SystemRandom().randrange(2**32))


def pytest_terminal_summary(terminalreporter, config):
    if settings.get_current_profile_name() == "random":
        seed = config.getoption("hypothesis_seed")
        terminalreporter.write_line(
            f"hypothesis seed {seed}: HYPOTHESIS_PROFILE=random pytest --hypothesis-seed={seed} "
            "repeats this run"
        )


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
