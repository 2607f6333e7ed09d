from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.sanitise import Sanitiser, load_policies
from pipeline.tokenise import LocalMacBackend, Tokeniser
from pipeline.tokenise.backends import LOCAL_KEY_OPT_IN


@pytest.fixture()
def tokeniser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tokeniser]:
    # Pure policy tests: the in-memory test key (the HSM path is tested in tests/custody).
    monkeypatch.setenv("AUDITVEIL_INSECURE_LOCAL_KEY", LOCAL_KEY_OPT_IN)
    yield Tokeniser(LocalMacBackend(bytes(range(32))))


@pytest.fixture()
def sanitiser(tokeniser: Tokeniser) -> Sanitiser:
    return Sanitiser(load_policies(), tokeniser)
