"""Where the HMAC is computed: the HSM (always, in real runs) or, for unit tests only, memory.

The ``local`` backend keeps a key in process memory. It exists so that pure unit tests of the
policy and the normalisers run without a token; it refuses to start unless the environment
variable ``AUDITVEIL_INSECURE_LOCAL_KEY`` is exactly ``i-understand-this-is-for-tests``, and
the CLI never selects it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any, Protocol

from pipeline.config import Pkcs11Settings
from pipeline.errors import ConfigError

LOCAL_KEY_OPT_IN = "i-understand-this-is-for-tests"


class MacBackend(Protocol):
    key_version: int

    def mac(self, data: bytes) -> bytes: ...

    def probe(self) -> None: ...

    def close(self) -> None: ...


class HsmMacBackend:
    """CKM_SHA256_HMAC inside the HSM, one session per worker."""

    def __init__(self, settings: Pkcs11Settings) -> None:
        from pipeline.custody.hsm import HsmSession

        self.key_version = settings.key_version
        self._session = HsmSession(settings)
        self._session.signing_key(self.key_version)  # fail now, not at the first event

    def mac(self, data: bytes) -> bytes:
        return self._session.hmac_sha256(self.key_version, data)

    def probe(self) -> None:
        self._session.probe(self.key_version)

    def close(self) -> None:
        self._session.close()

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("an HSM-backed MAC cannot be pickled; open it in DoFn.setup()")


class LocalMacBackend:
    """In-memory HMAC key, for unit tests only (see module docstring)."""

    def __init__(self, key: bytes, key_version: int = 1) -> None:
        if os.environ.get("AUDITVEIL_INSECURE_LOCAL_KEY") != LOCAL_KEY_OPT_IN:
            raise ConfigError("the local in-memory key backend is for unit tests only and is not enabled")
        if len(key) < 32:
            raise ConfigError("the local test key must be at least 32 bytes")
        self.key_version = key_version
        self._key = key

    def mac(self, data: bytes) -> bytes:
        return hmac.digest(self._key, data, hashlib.sha256)

    def probe(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a key cannot be pickled")
