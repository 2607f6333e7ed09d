"""Open sealed lookup entries for approved tokens: the HSM unwraps each DEK, AES-GCM opens.

Only :meth:`pipeline.reid.workflow.Reid.reveal` calls :func:`lookup_opener`'s result, inside
the transaction that has just checked the request. The custodians' RSA private key never
leaves the HSM; unwrapped DEKs live in memory for one reveal only, and the HSM session is
opened for the reveal and closed after it.

For each token: the first entry whose DEK unwraps and whose ciphertext authenticates (the
token is the associated data) gives the value. A token with entries whose DEKs have all been
destroyed by ``auditveil lookup purge`` is *unrecoverable*; a token with no entry at all is
reported as having *no entry*.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag

from pipeline.config import Pkcs11Settings, StorageSettings
from pipeline.errors import ConfigError
from pipeline.lookup.envelope import open_sealed
from pipeline.lookup.store import find_entries, load_dek
from pipeline.reid.workflow import Opened, Opener
from pipeline.storage.fs import resolve

# python-pkcs11 refuses a second logged-in session on one token in one process
# (CKR_USER_ALREADY_LOGGED_IN), so reveals in this process take turns; they are rare.
_HSM_TURN = threading.Lock()


def lookup_opener(lookup_uri: str, pkcs11: Pkcs11Settings, storage: StorageSettings | None = None) -> Opener:
    if not lookup_uri:
        raise ConfigError("no lookup location: pass --lookup or set reid.lookup (AUDITVEIL_REID_LOOKUP)")
    loc = resolve(lookup_uri, storage)

    def open_tokens(tokens: Sequence[str]) -> Opened:
        from pipeline.custody.hsm import HsmSession

        found = find_entries(loc, tokens)
        values: dict[str, str] = {}
        unrecoverable: list[str] = []
        deks: dict[str, bytes | None] = {}
        with _HSM_TURN, HsmSession(pkcs11.custodian_view()) as hsm:
            for token in sorted(set(tokens)):
                for entry in found.get(token, []):
                    if entry.dek_id not in deks:
                        wrapped = load_dek(loc, entry.dek_id)
                        deks[entry.dek_id] = (None if wrapped is None
                                              else hsm.unwrap_dek(wrapped.wrapped_dek, wrapped.oaep_hash))
                    dek = deks[entry.dek_id]
                    if dek is None:
                        continue
                    try:
                        plain = open_sealed(dek, entry.nonce, entry.ciphertext, token)
                    except InvalidTag:
                        continue  # a damaged or moved entry: another copy may open
                    values[token] = plain.decode("utf-8", "surrogatepass")
                    break
                else:
                    if token in found:
                        unrecoverable.append(token)
        no_entry = tuple(sorted(t for t in set(tokens) if t not in found))
        return Opened(values, no_entry, tuple(unrecoverable))

    return open_tokens
