"""Fixtures shared by the tests of serving/server/ (`tiny` is in tests/serving/conftest.py)."""

import pytest

from serving import model_config as mc
from tests.serving.server.tiny import Stubs, publish, start_server


@pytest.fixture(scope="module")
def served(tiny, tmp_path_factory):
    """One server: model "m" with version 1 (tag 1), 64 KiB request limit."""
    base = str(tmp_path_factory.mktemp("m"))
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)], max_request_bytes=64 * 1024)
    stubs = Stubs(server.port)
    yield server, stubs
    stubs.close()
    server.stop(grace_s=1)
