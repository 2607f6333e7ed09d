"""Integration tests against a real SoftHSM2 token (PKCS#11)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass

from pipeline.config import Pkcs11Settings, Secret
from pipeline.custody.hsm import HsmSession, read_custodian_public_key
from pipeline.custody.keys import ensure_keys, key_status
from pipeline.errors import ConfigError, HsmUnavailable, KeyNotFound
from pipeline.lookup.envelope import Sealer, load_custodian_public_key, open_sealed
from pipeline.tokenise import HsmMacBackend, Tokeniser
from pipeline.tokenise.canonical import canonical_v1
from tests.tokenise.test_canonical_vectors import KEY, VECTORS

pytestmark = pytest.mark.hsm


def test_keys_init_is_idempotent_and_keys_are_non_extractable(hsm_settings: Pkcs11Settings) -> None:
    again = ensure_keys(hsm_settings)
    assert again.created == ()
    assert again.hmac_versions == (1,)
    with HsmSession(hsm_settings) as s:
        key = s.hmac_key(1)
        assert key[Attribute.SENSITIVE] is True and key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.SIGN] is True and key[Attribute.ENCRYPT] is False
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE]
    with HsmSession(hsm_settings.custodian_view()) as c:
        priv = c.raw.get_key(object_class=ObjectClass.PRIVATE_KEY, label=hsm_settings.custodian_key_label)
        assert priv[Attribute.SENSITIVE] is True and priv[Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            priv[Attribute.PRIVATE_EXPONENT]
    assert key_status(hsm_settings).custodian_key


def test_hmacs_use_a_session_copy_that_keeps_the_key_sealed(hsm_settings: Pkcs11Settings) -> None:
    """The signing handle is a session object inside the HSM: sensitive, non-extractable, not
    stored, gone with its session, and it computes the same MAC as the token key."""
    with HsmSession(hsm_settings) as s:
        token_key = s.hmac_key(1)
        copy = s.signing_key(1)
        assert copy[Attribute.TOKEN] is False and copy[Attribute.PRIVATE] is True
        assert copy[Attribute.SENSITIVE] is True and copy[Attribute.EXTRACTABLE] is False
        assert copy[Attribute.SIGN] is True and copy[Attribute.ENCRYPT] is False
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            copy[Attribute.VALUE]
        data = b"auditveil session copy check"
        mechanism = pkcs11.Mechanism.SHA256_HMAC
        assert bytes(copy.sign(data, mechanism=mechanism)) == bytes(token_key.sign(data, mechanism=mechanism))
        assert s.hmac_sha256(1, data) == bytes(token_key.sign(data, mechanism=mechanism))
        assert s.hmac_key(1) is token_key  # lookups by the token label still find one key
        label = copy[Attribute.LABEL]
    with HsmSession(hsm_settings) as later:
        assert later.find(label, ObjectClass.SECRET_KEY) is None  # destroyed with its session
        assert [v for v in ensure_keys(hsm_settings).hmac_versions] == [1]


def test_hsm_hmac_matches_the_known_answer_vectors(hsm_settings: Pkcs11Settings) -> None:
    """CKM_SHA256_HMAC in the HSM = HMAC-SHA256: import the KAT key under a test label."""
    kat = dataclasses.replace(hsm_settings, hmac_key_label="kat-vectors")
    with HsmSession(kat, rw=True) as s:
        if s.find("kat-vectors-k1", ObjectClass.SECRET_KEY) is None:
            s.raw.create_object({
                Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.LABEL: "kat-vectors-k1",
                Attribute.VALUE: KEY,
            })
    tok = Tokeniser(HsmMacBackend(kat))
    try:
        for label, value, _, expected in VECTORS:
            domain, _, sub = label.partition("/")
            assert tok.tokenise(domain, value, sub) == expected
            assert tok._backend.mac(canonical_v1(label, value)) == hmac.digest(KEY, canonical_v1(label, value),
                                                                               hashlib.sha256)
    finally:
        tok.close()


def test_hsm_backend_refuses_pickling(hsm_settings: Pkcs11Settings) -> None:
    backend = HsmMacBackend(hsm_settings)
    try:
        with pytest.raises(TypeError):
            pickle.dumps(backend)
    finally:
        backend.close()


def test_two_sessions_in_one_process_share_the_login(hsm_settings: Pkcs11Settings) -> None:
    a = HsmSession(hsm_settings)
    b = HsmSession(hsm_settings)
    a.close()  # must not log b out
    assert len(b.hmac_sha256(1, b"x")) == 32
    b.close()


@pytest.mark.parametrize("change", [
    {"pin": Secret("000000")},
    {"token_label": "no-such-token"},
    {"module": "/nonexistent/libpkcs11.so"},
])
def test_unavailable_hsm_fails_closed_with_a_clear_error(hsm_settings: Pkcs11Settings,
                                                        change: dict[str, object]) -> None:
    bad = dataclasses.replace(hsm_settings, **change)  # type: ignore[arg-type]
    with pytest.raises(HsmUnavailable) as err:
        HsmMacBackend(bad)
    assert "000000" not in str(err.value)


def test_missing_key_version_is_key_not_found(hsm_settings: Pkcs11Settings) -> None:
    with pytest.raises(KeyNotFound, match="keys init"):
        HsmMacBackend(dataclasses.replace(hsm_settings, key_version=99))


def test_missing_pin_is_a_config_error(hsm_settings: Pkcs11Settings) -> None:
    with pytest.raises(ConfigError, match="AUDITVEIL_PKCS11_PIN"):
        HsmSession(dataclasses.replace(hsm_settings, pin=None, pin_file=None))


def test_the_pipeline_cannot_open_a_lookup_entry(hsm_settings: Pkcs11Settings) -> None:
    """What a worker has — the custodians' public key and the pipeline token's PIN — cannot
    recover a sealed value; only a custodian session on the custodian token can."""
    der = read_custodian_public_key(hsm_settings.without_custodian_pin())
    assert load_custodian_public_key(der).key_size >= 3072
    sealer = Sealer(der, hsm_settings.oaep_hash)
    nonce, ct = sealer.seal(b"eu-user-8847261", "ctx.k1.token")
    wrapped = sealer.wrapped.wrapped_dek
    worker = hsm_settings.without_custodian_pin()
    # 1. The worker's own token holds no custodian private key.
    with HsmSession(worker) as s, pytest.raises(KeyNotFound):
        s.unwrap_dek(wrapped, worker.oaep_hash)
    # 2. The worker cannot log in to the custodian token: it has no PIN for it...
    with pytest.raises(ConfigError):
        HsmSession(worker.custodian_view())
    # ...and the pipeline PIN is not the custodian PIN.
    with pytest.raises(HsmUnavailable):
        HsmSession(dataclasses.replace(worker.custodian_view(), pin=worker.pin))
    # 3. A public (not logged-in) session on the custodian token cannot use the private key.
    with HsmSession(worker.custodian_view(), login=False) as public, pytest.raises(KeyNotFound):
        public.unwrap_dek(wrapped, worker.oaep_hash)
    # The custodians can.
    with HsmSession(hsm_settings.custodian_view()) as custodian:
        dek = custodian.unwrap_dek(wrapped, hsm_settings.oaep_hash)
    assert open_sealed(dek, nonce, ct, "ctx.k1.token") == b"eu-user-8847261"
    assert os.environ.get("AUDITVEIL_PKCS11_CUSTODIAN_PIN") is None


def test_a_lost_token_is_noticed_although_hmacs_use_a_session_copy(tmp_path: Path) -> None:
    # In a child process with a token of its own (this process's PKCS#11 library already knows
    # its token directory); the test destroys the token under a live session.
    script = (
        "import shutil, sys\n"
        "from pathlib import Path\n"
        "from pipeline.custody.hsm import HsmSession, PROBE_EVERY\n"
        "from pipeline.custody.keys import ensure_keys\n"
        "from pipeline.custody.softhsm import ensure_token\n"
        "from pipeline.errors import HsmUnavailable\n"
        "home = Path(sys.argv[1])\n"
        "settings = ensure_token(home, label='lost-token').settings()\n"
        "ensure_keys(settings)\n"
        "s = HsmSession(settings)\n"
        "s.hmac_sha256(1, b'before')\n"
        "shutil.rmtree(home / 'tokens')\n"
        "try:\n    s.probe(1)\nexcept HsmUnavailable:\n    print('probe: unavailable')\n"
        "try:\n"
        "    for i in range(PROBE_EVERY + 1):\n        s.hmac_sha256(1, b'after %d' % i)\n"
        "except HsmUnavailable:\n    print('hmac: unavailable')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "hsm")], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.split("\n")[:2] == ["probe: unavailable", "hmac: unavailable"]
