"""Every error auditveil raises on purpose.

Rules for every message built here or passed in:

* never an identifier (ARN, user name, IP, access key, encryption-context value, file
  content) and never a secret (PIN, key bytes, API key);
* one sentence that says what is wrong and what to do about it.

Errors from PKCS#11, boto/pyarrow, Kafka and databases are translated into these at the
boundary (``raise HsmUnavailable(...) from None`` so that the library's text, which may
carry a label or path, does not reach the user's terminal).
"""

from __future__ import annotations


class AuditveilError(Exception):
    """Root of all auditveil errors. The CLI prints the message and exits with ``exit_code``."""

    exit_code = 1


class ConfigError(AuditveilError):
    """The configuration file, an environment variable or a command-line option is wrong."""

    exit_code = 2


class InputError(AuditveilError):
    """An input path or URI cannot be read at all (a bad *record* is a dead letter, not this)."""

    exit_code = 2


class DecodeError(AuditveilError):
    """One record or file could not be decoded; the pipeline dead-letters it and goes on.

    ``error_class`` is a short stable label (``json``, ``gzip``, ``shape``, ``too_large``, …)
    used in dead letters and metrics.
    """

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


class HsmUnavailable(AuditveilError):
    """The HSM cannot be reached or refused an operation: auditveil fails closed."""

    exit_code = 3


class KeyNotFound(HsmUnavailable):
    """The HMAC key or the custodians' key pair is not in the token (run ``auditveil keys init``)."""


class SinkError(AuditveilError):
    """Output, lookup or dead-letter storage cannot be written: nothing partial is left visible."""

    exit_code = 4


class JurisdictionError(AuditveilError):
    """The destination is outside the EU/EEA or run by a US-headquartered provider."""

    exit_code = 5


class ReidRefused(AuditveilError):
    """A re-identification step was refused (quorum, signature, expiry, requester, …)."""

    exit_code = 6


class LeakFound(AuditveilError):
    """The leak scanner found identifiers in output files."""

    exit_code = 1
