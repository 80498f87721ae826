"""Test setup: the repository root on sys.path, quiet TensorFlow logs, shared trained runs."""

import os
import random
import sys
import zlib

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def _node_seed(request) -> int:
    return zlib.crc32(request.node.nodeid.encode())


@pytest.fixture(autouse=True)
def _seed_global_state(request):
    """Unseeded Keras initialisers draw from global state (Python's `random`, Keras' global
    seed generator): seed it from the test's node id, so that what a test draws does not
    depend on which tests ran before it."""
    seed = _node_seed(request) % (2**31 - 1)
    random.seed(seed)
    np.random.seed(seed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed)


@pytest.fixture
def rng(request):
    """A NumPy generator seeded from the test's node id: test data independent of which tests ran before."""
    return np.random.default_rng(_node_seed(request))


@pytest.fixture(scope="session")
def plain_run(tmp_path_factory):
    """The `tiny` preset trained one short epoch (default initialisation), once per session.

    Read-only: a module that writes into a run takes `copy_run(plain_run, ...)`.
    """
    from tests.runs import SHARED_TEST_EXAMPLES, train_tiny_run

    return train_tiny_run(tmp_path_factory.mktemp("shared") / "plain", SHARED_TEST_EXAMPLES)


@pytest.fixture(scope="session")
def visible_run(tmp_path_factory):
    """As `plain_run`, with `tests.runs.VISIBLE` (seeds give visibly different images)."""
    from tests.runs import SHARED_TEST_EXAMPLES, VISIBLE, train_tiny_run

    return train_tiny_run(tmp_path_factory.mktemp("shared") / "visible", {**VISIBLE, **SHARED_TEST_EXAMPLES})
