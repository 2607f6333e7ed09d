"""Tokenisation: frozen canonical bytes, HMAC in the HSM, printable domain-prefixed tokens."""

from pipeline.tokenise.backends import HsmMacBackend, LocalMacBackend, MacBackend
from pipeline.tokenise.canonical import CANONICAL_VERSION, canonical_v1
from pipeline.tokenise.domains import DOMAINS
from pipeline.tokenise.token_format import TOKEN_RE, format_token, parse_token
from pipeline.tokenise.tokeniser import NewEntry, SharedTokens, Tokeniser

__all__ = [
    "CANONICAL_VERSION",
    "DOMAINS",
    "TOKEN_RE",
    "HsmMacBackend",
    "LocalMacBackend",
    "MacBackend",
    "NewEntry",
    "SharedTokens",
    "Tokeniser",
    "canonical_v1",
    "format_token",
    "parse_token",
]
