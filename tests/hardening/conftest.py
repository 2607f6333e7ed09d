"""Fixtures for the hardening tests: an in-memory MAC key (unit-level properties only)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pipeline.sanitise import Sanitiser, load_policies
from pipeline.tokenise import LocalMacBackend, Tokeniser
from pipeline.tokenise.backends import LOCAL_KEY_OPT_IN


@pytest.fixture(scope="module")
def local_sanitiser() -> Iterator[Sanitiser]:
    """A Sanitiser over the shipped policies with the *test-only* local MAC backend.

    The opt-in variable is set only while the backend is built, then restored, so nothing
    else in the session can pick the insecure backend up by accident.
    """
    old = os.environ.get("AUDITVEIL_INSECURE_LOCAL_KEY")
    os.environ["AUDITVEIL_INSECURE_LOCAL_KEY"] = LOCAL_KEY_OPT_IN
    try:
        backend = LocalMacBackend(b"hardening-property-tests-key-32b!")
    finally:
        if old is None:
            os.environ.pop("AUDITVEIL_INSECURE_LOCAL_KEY", None)
        else:
            os.environ["AUDITVEIL_INSECURE_LOCAL_KEY"] = old
    yield Sanitiser(load_policies(), Tokeniser(backend, cache_size=10_000))
