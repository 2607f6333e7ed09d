"""The HSM boundary: one PKCS#11 session and the few operations auditveil asks of it.

Nothing here ever reads key material out of the token. The HMAC key is a generic secret
with ``CKA_SENSITIVE=true`` and ``CKA_EXTRACTABLE=false``; the custodians' RSA private key is
the same. The pipeline asks the HSM for ``CKM_SHA256_HMAC`` signatures; the re-identification
service asks it to RSA-OAEP-decrypt wrapped data keys. The custodians' *public* key is read
out (it is public) so that workers can wrap data keys in software.

Every PKCS#11 exception is translated into :class:`HsmUnavailable` or :class:`KeyNotFound`
here, with a message that names the operation but not the PIN, nor any data.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pipeline.config import Pkcs11Settings, Secret
from pipeline.errors import ConfigError, HsmUnavailable, KeyNotFound

_LIBS: dict[str, Any] = {}
_LIBS_LOCK = threading.Lock()
# PKCS#11 login state belongs to the process, not to a session: a second C_Login fails with
# CKR_USER_ALREADY_LOGGED_IN and any C_Logout logs every session out. So each process holds
# one "anchor" session per token that carries the login, reference-counted; working sessions
# are opened without a PIN and share it.
_LOGINS: dict[tuple[str, str], list[Any]] = {}
# Every this many HMACs go to the token key rather than its session copy (see signing_key).
PROBE_EVERY = 1024


def _load_library(path: str) -> Any:
    import pkcs11

    with _LIBS_LOCK:
        lib = _LIBS.get(path)
        if lib is None:
            try:
                lib = pkcs11.lib(path)
            except (RuntimeError, OSError, pkcs11.exceptions.PKCS11Error):
                raise HsmUnavailable(
                    "the PKCS#11 module cannot be loaded; check AUDITVEIL_PKCS11_MODULE "
                    "(is softhsm2 or your HSM client installed?)"
                ) from None
            _LIBS[path] = lib
        return lib


def _with_retries(open_session: Any) -> Any:
    """Open a session, riding out a transient failure of the token.

    SoftHSM2's file store rewrites a token's files on every login; another process that reads
    them in that instant gets CKR_GENERAL_ERROR or no token at all, until it initialises the
    library again. Transient errors are retried for a few seconds, re-initialising the library
    in between — only while this process holds no session a re-initialisation would cut. PIN
    errors are never retried (retries would lock the PIN).
    """
    import pkcs11

    e = pkcs11.exceptions
    transient = (e.NoSuchToken, e.TokenNotPresent, e.TokenNotRecognised, e.GeneralError, e.DeviceError,
                 e.DeviceRemoved, e.FunctionFailed, e.SessionCount)
    delays = (0.05, 0.1, 0.2, 0.4, 0.8, 1.2, 1.6)
    for attempt in range(len(delays) + 1):
        try:
            return open_session()
        except (e.PinIncorrect, e.PinInvalid, e.PinLenRange):
            raise HsmUnavailable("the HSM refused the PIN; check AUDITVEIL_PKCS11_PIN") from None
        except e.PinLocked:
            raise HsmUnavailable("the HSM PIN is locked; ask the HSM security officer to unlock it") from None
        except transient as exc:
            if attempt == len(delays):
                if isinstance(exc, e.NoSuchToken):
                    raise HsmUnavailable(
                        "no HSM token has the configured label; check AUDITVEIL_PKCS11_TOKEN_LABEL "
                        "or initialise the token"
                    ) from None
                raise HsmUnavailable("the HSM token cannot be reached") from None
        except e.PKCS11Error:
            raise HsmUnavailable("a session on the HSM token cannot be opened") from None
        time.sleep(delays[attempt])
        with _LIBS_LOCK:
            if not _LOGINS:
                try:
                    lib_reinitialize_all()
                except e.PKCS11Error:
                    pass
    raise AssertionError("unreachable")  # pragma: no cover


def lib_reinitialize_all() -> None:
    """C_Finalize + C_Initialize every loaded module (caller holds _LIBS_LOCK, no sessions open)."""
    for lib in _LIBS.values():
        lib.reinitialize()


def _acquire_login(key: tuple[str, str], token: Any, pin: str) -> None:
    import pkcs11

    with _LIBS_LOCK:
        held = _LOGINS.get(key)
        if held is not None:
            held[1] += 1
            return
        try:
            anchor = token.open(user_pin=pin)
        except pkcs11.exceptions.UserAlreadyLoggedIn:
            anchor = token.open()  # logged in by someone else in this process; share it
        _LOGINS[key] = [anchor, 1]


def _release_login(key: tuple[str, str]) -> None:
    with _LIBS_LOCK:
        held = _LOGINS.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] <= 0:
            del _LOGINS[key]
            try:
                held[0].close()
            except Exception:  # noqa: S110 - a dead token must not mask the caller's error
                pass


def hmac_key_label(settings: Pkcs11Settings, version: int | None = None) -> str:
    return f"{settings.hmac_key_label}-k{version or settings.key_version}"


def oaep_params(hash_name: str) -> tuple[Any, Any, None]:
    from pkcs11 import MGF, Mechanism

    if hash_name == "sha1":
        return (Mechanism.SHA_1, MGF.SHA1, None)
    if hash_name == "sha256":
        return (Mechanism.SHA256, MGF.SHA256, None)
    raise ConfigError("pkcs11.oaep_hash must be sha1 or sha256")


class HsmSession:
    """An open, logged-in session on the configured token. Not picklable, by design."""

    def __init__(self, settings: Pkcs11Settings, *, rw: bool = False, login: bool = True) -> None:
        """Open a session; ``login=False`` gives a public session (public objects only)."""

        self._settings = settings
        lib = _load_library(settings.module)
        pin = settings.user_pin() if login else None
        self._login_key: tuple[str, str] | None = (settings.module, settings.token_label) if pin else None
        self._session = _with_retries(lambda: self._open(lib, pin, rw))
        self._closed = False
        self._hmac_keys: dict[int, Any] = {}
        self._signing_keys: dict[int, Any] = {}
        self._since_probe = 0
        self._lock = threading.Lock()

    def _open(self, lib: Any, pin: Secret | None, rw: bool) -> Any:
        import pkcs11

        token = lib.get_token(token_label=self._settings.token_label)
        if self._login_key is not None and pin is not None:
            _acquire_login(self._login_key, token, pin.reveal())
        try:
            return token.open(rw=rw)
        except pkcs11.exceptions.PKCS11Error:
            if self._login_key is not None:
                _release_login(self._login_key)
            raise

    def __reduce__(self) -> Any:
        raise TypeError("an HSM session cannot be pickled; open one in DoFn.setup()")

    @property
    def raw(self) -> Any:
        """The python-pkcs11 session, for key management only."""
        return self._session

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._session.close()
        except Exception:  # noqa: S110 - closing a dead session must not mask the real error
            pass
        if self._login_key is not None:
            _release_login(self._login_key)

    def __enter__(self) -> HsmSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookups -----------------------------------------------------------------------------

    def _find_one(self, label: str, object_class: Any) -> Any:
        import pkcs11

        try:
            objs = list(self._session.get_objects({
                pkcs11.Attribute.LABEL: label, pkcs11.Attribute.CLASS: object_class,
            }))
        except pkcs11.exceptions.PKCS11Error:
            raise HsmUnavailable("the HSM did not answer a key lookup") from None
        if not objs:
            raise KeyNotFound("a key auditveil needs is not in the HSM token; run `auditveil keys init`")
        if len(objs) > 1:
            raise HsmUnavailable("the HSM token holds two keys with one of auditveil's labels; remove the copy")
        return objs[0]

    def find(self, label: str, object_class: Any) -> Any | None:
        try:
            return self._find_one(label, object_class)
        except KeyNotFound:
            return None

    def hmac_key(self, version: int) -> Any:
        import pkcs11

        key = self._hmac_keys.get(version)
        if key is None:
            key = self._find_one(hmac_key_label(self._settings, version), pkcs11.ObjectClass.SECRET_KEY)
            self._hmac_keys[version] = key
        return key

    def signing_key(self, version: int) -> Any:
        """The handle HMACs are computed with: a session-object copy of the token key if the HSM
        allows it, else the token key itself.

        The copy is made inside the HSM (``C_CopyObject`` with ``CKA_TOKEN=false``), keeps
        ``CKA_SENSITIVE``/``CKA_EXTRACTABLE``/``CKA_PRIVATE`` and its usage flags, is never
        stored, and disappears when this session closes. It exists for speed: SoftHSM2 checks
        its object store and decrypts a token object's value on every operation, which doubles
        the cost of each HMAC (about 27 µs → 13 µs here). Same key, same MAC (tested).

        A copy outlives the token it came from, so the token key itself still answers every
        ``PROBE_EVERY``-th HMAC and every :meth:`probe`: losing the HSM is still noticed.
        """
        import pkcs11

        key = self._signing_keys.get(version)
        if key is None:
            token_key = self.hmac_key(version)
            try:
                with self._lock:
                    key = token_key.copy({
                        pkcs11.Attribute.TOKEN: False,
                        # its own label, so a lookup by the token key's label still finds one key
                        pkcs11.Attribute.LABEL: f"{hmac_key_label(self._settings, version)}.session",
                    })
            except pkcs11.exceptions.PKCS11Error:
                key = token_key
            self._signing_keys[version] = key
        return key

    # -- operations --------------------------------------------------------------------------

    def hmac_sha256(self, version: int, data: bytes) -> bytes:
        """CKM_SHA256_HMAC over ``data`` with HMAC key ``version``, computed inside the HSM."""
        key = self.signing_key(version)
        self._since_probe += 1
        if self._since_probe >= PROBE_EVERY:
            key = self.hmac_key(version)  # the token key: fails if the token is gone
            self._since_probe = 0
        return self._sign(key, data)

    def probe(self, version: int) -> None:
        """Fail with :class:`HsmUnavailable` unless the token still answers with its HMAC key.

        Called before each batch or flush, so that no batch is tokenised with a session copy
        after the token has gone."""
        self._sign(self.hmac_key(version), b"auditveil-probe")
        self._since_probe = 0

    def _sign(self, key: Any, data: bytes) -> bytes:
        import pkcs11

        try:
            with self._lock:
                return bytes(key.sign(data, mechanism=pkcs11.Mechanism.SHA256_HMAC))
        except pkcs11.exceptions.PKCS11Error:
            raise HsmUnavailable("the HSM refused or failed an HMAC operation") from None

    def custodian_public_key_der(self) -> bytes:
        """The custodians' RSA public key as DER SubjectPublicKeyInfo (public material)."""
        import pkcs11
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

        pub = self._find_one(self._settings.custodian_key_label, pkcs11.ObjectClass.PUBLIC_KEY)
        try:
            n = int.from_bytes(pub[pkcs11.Attribute.MODULUS], "big")
            e = int.from_bytes(pub[pkcs11.Attribute.PUBLIC_EXPONENT], "big")
        except pkcs11.exceptions.PKCS11Error:
            raise HsmUnavailable("the HSM did not return the custodians' public key") from None
        key = RSAPublicNumbers(e, n).public_key()
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def unwrap_dek(self, wrapped: bytes, oaep_hash: str) -> bytes:
        """RSA-OAEP-decrypt a wrapped data key with the custodians' private key, inside the HSM.

        Needs a logged-in session on the custodian token: ``HsmSession(s.custodian_view())``.
        """
        import pkcs11

        priv = self._find_one(self._settings.custodian_key_label, pkcs11.ObjectClass.PRIVATE_KEY)
        try:
            with self._lock:
                return bytes(priv.decrypt(wrapped, mechanism=pkcs11.Mechanism.RSA_PKCS_OAEP,
                                          mechanism_param=oaep_params(oaep_hash)))
        except pkcs11.exceptions.PKCS11Error:
            raise HsmUnavailable("the HSM could not unwrap a data key") from None


def read_custodian_public_key(settings: Pkcs11Settings) -> bytes:
    """The custodians' public key (DER), read from the custodian token *without* logging in.

    This is all a pipeline worker ever gets of the custodian token. In single-token mode a
    public key created private falls back to the pipeline's own logged-in session.
    """
    view = settings.without_custodian_pin().custodian_view()
    with HsmSession(view, login=False) as public:
        try:
            return public.custodian_public_key_der()
        except KeyNotFound:
            if settings.separate_custodian_token:
                raise
    with HsmSession(settings) as session:
        return session.custodian_public_key_der()
