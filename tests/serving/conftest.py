"""Fixtures shared by the serving tests."""

import pytest

from tests.serving.server.tiny import build_tiny_models


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The tiny SavedModel versions of `build_tiny_models`, exported once per session; tests
    never change them, they `publish` copies."""
    return build_tiny_models(tmp_path_factory.mktemp("tiny"))

