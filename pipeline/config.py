"""The one configuration loader: frozen dataclasses from a TOML file, then ``AUDITVEIL_*`` overrides.

Every setting lives in a section; its environment override is ``AUDITVEIL_<SECTION>_<NAME>``
in upper case, e.g. ``[pkcs11] token_label`` ↔ ``AUDITVEIL_PKCS11_TOKEN_LABEL`` and
``[reid] db`` ↔ ``AUDITVEIL_REID_DB``. Precedence: built-in default < file < environment.
The file is ``--config FILE`` or ``$AUDITVEIL_CONFIG``; without either, defaults and the
environment apply.

Secrets (the HSM PIN, S3 secret key) are held as :class:`Secret`, whose ``repr`` and ``str``
never show the value; they are read from the environment or from a file with owner-only
permissions, never from a command-line argument (which would show in ``ps``).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

ENV_PREFIX = "AUDITVEIL_"


class Secret:
    """A secret string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable so that Beam can ship settings to workers; still never printed.
        return (Secret, (self._value,))


def read_secret_file(path: str, what: str) -> Secret:
    """Read a secret from a file that only its owner may read."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise ConfigError(f"the {what} file does not exist or cannot be read") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"the {what} file is readable by group or others; run chmod 600 on it")
    return Secret(p.read_text(encoding="utf-8").strip())


def write_secret_file(path: str | Path, data: bytes, what: str) -> None:
    """Create ``path`` readable by its owner only (0600); never overwrite an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"the {what} file already exists; choose another name") from None
    except OSError:
        raise ConfigError(f"the {what} file cannot be created") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


@dataclass(frozen=True)
class Pkcs11Settings:
    """Where the HSM is and which objects in it auditveil uses.

    Two tokens (or partitions/slots) keep the pipeline from ever reading the lookup vault:
    the *pipeline token* (``token_label``, ``pin``) holds the HMAC key; the *custodian token*
    (``custodian_token_label``, ``custodian_pin``) holds the custodians' RSA key pair. The
    pipeline reads only the public key, from a session without login; only the
    re-identification service has the custodian PIN. With ``custodian_token_label`` empty,
    both live in one token (simpler, but then the pipeline's PIN could also unwrap).
    """

    module: str = "/usr/lib/softhsm/libsofthsm2.so"
    token_label: str = "auditveil"  # noqa: S105 - a token label, not a password
    pin: Secret | None = None
    pin_file: str | None = None
    hmac_key_label: str = "auditveil-hmac"
    custodian_token_label: str = ""
    custodian_pin: Secret | None = None
    custodian_pin_file: str | None = None
    custodian_key_label: str = "auditveil-custodian"
    # RSA-OAEP hash for wrapping DEKs: "sha256" where the HSM supports it; SoftHSM2 2.6 only
    # accepts "sha1" (still sound for key wrapping). Recorded beside every wrapped DEK.
    oaep_hash: str = "sha1"
    key_version: int = 1

    def user_pin(self) -> Secret:
        if self.pin is not None:
            return self.pin
        if self.pin_file:
            return read_secret_file(self.pin_file, "HSM PIN")
        raise ConfigError(
            "no HSM PIN configured: set AUDITVEIL_PKCS11_PIN or pin_file in the [pkcs11] section"
        )

    @property
    def separate_custodian_token(self) -> bool:
        return bool(self.custodian_token_label) and self.custodian_token_label != self.token_label

    def custodian_view(self) -> Pkcs11Settings:
        """These settings pointed at the custodian token, with the custodian PIN (if known)."""
        if not self.separate_custodian_token:
            return self
        pin = self.custodian_pin
        if pin is None and self.custodian_pin_file:
            pin = read_secret_file(self.custodian_pin_file, "custodian HSM PIN")
        return dataclasses.replace(self, token_label=self.custodian_token_label, pin=pin, pin_file=None,
                                   custodian_pin=None, custodian_pin_file=None)

    def without_custodian_pin(self) -> Pkcs11Settings:
        """What a pipeline worker gets: no way to log in to the custodian token."""
        return dataclasses.replace(self, custodian_pin=None, custodian_pin_file=None)


@dataclass(frozen=True)
class TokeniseSettings:
    # Bounded per-worker memo of value -> token, so the HSM sees each distinct value ~once.
    cache_size: int = 500_000


@dataclass(frozen=True)
class PipelineSettings:
    policy_dir: str = ""  # empty: the policies shipped in schemas/policy
    batch_size: int = 20_000  # events per sanitised batch (one Parquet file per partition)
    split_bytes: int = 16 * 1024 * 1024  # line-delimited inputs are read in ranges of this size
    workers: int = 0  # 0: one per core, fewer for small inputs (run/sizing.py default_workers)
    max_record_bytes: int = 8 * 1024 * 1024
    max_decompressed_bytes: int = 1024 * 1024 * 1024  # gzip bomb guard, per file
    max_depth: int = 64


@dataclass(frozen=True)
class StorageSettings:
    s3_endpoint: str = ""
    s3_region: str = ""
    s3_access_key: str = ""
    s3_secret_key: Secret | None = None
    s3_profile: str = ""
    s3_path_style: bool = True
    allow_non_eu: bool = False
    strict_sovereignty: bool = False
    s3_retry_seconds: int = 60  # keep retrying 5xx / timeouts / refused connections this long
    s3_timeout_seconds: int = 30  # per request (connect: at most 10)
    jurisdiction_file: str = ""  # empty: schemas/jurisdiction.toml shipped with auditveil
    # Where s3:// *inputs* (CloudTrail exports) are read, when not from the output endpoint:
    # setting any input_s3_endpoint/region/access_key/profile switches inputs to these (an empty
    # input_s3_endpoint then means AWS itself). Secret: AUDITVEIL_STORAGE_INPUT_S3_SECRET_KEY.
    input_s3_endpoint: str = ""
    input_s3_region: str = ""
    input_s3_access_key: str = ""
    input_s3_secret_key: Secret | None = None
    input_s3_profile: str = ""
    input_s3_path_style: bool = False


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = ""
    group_id: str = "auditveil"
    start: str = "earliest"  # when the group has no committed offset: earliest | latest
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: Secret | None = None
    ssl_cafile: str = ""
    window_seconds: int = 60
    dedupe_horizon_seconds: int = 86_400
    discovery_seconds: int = 30  # streaming: how often topic metadata is re-read for new partitions


@dataclass(frozen=True)
class ReidSettings:
    db: str = ""  # empty: SQLite under the state directory; or postgresql://…
    quorum: int = 2
    max_tokens: int = 100
    reveal_uses: int = 1  # reveals allowed per approved request; 0: unlimited within the window
    reveal_window_minutes: int = 0  # >0: reveals only within this many minutes of approval
    reveal_rate_per_minute: int = 10  # HTTP service: reveals per caller per minute
    default_expiry_hours: int = 72
    lookup: str = ""  # the lookup-vault location the reveal opens (path or s3:// URI)


@dataclass(frozen=True)
class Settings:
    pkcs11: Pkcs11Settings = field(default_factory=Pkcs11Settings)
    tokenise: TokeniseSettings = field(default_factory=TokeniseSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    reid: ReidSettings = field(default_factory=ReidSettings)

    def redacted(self) -> dict[str, dict[str, Any]]:
        """The effective settings as plain data, secrets shown as ``***``."""
        out: dict[str, dict[str, Any]] = {}
        for sec in dataclasses.fields(self):
            section = getattr(self, sec.name)
            out[sec.name] = {
                f.name: ("***" if isinstance(v, Secret) else v)
                for f in dataclasses.fields(section)
                for v in [getattr(section, f.name)]
            }
        return out


_SECRET_FIELDS_FORBIDDEN_IN_FILE = {
    ("pkcs11", "pin"), ("pkcs11", "custodian_pin"), ("storage", "s3_secret_key"),
    ("storage", "input_s3_secret_key"), ("kafka", "sasl_password"),
}


def _convert(raw: Any, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if raw is None:
            return None
        return _convert(raw, args[0], where)
    if typ is Secret:
        return raw if isinstance(raw, Secret) else Secret(str(raw))
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        s = str(raw).strip().lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{where} must be true or false")
    if typ is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{where} must be a whole number")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a whole number") from None
    if typ is str:
        if not isinstance(raw, str | int | float):
            raise ConfigError(f"{where} must be a string")
        return str(raw)
    raise ConfigError(f"{where} has an unsupported type")  # pragma: no cover


def _section_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def load_settings(path: str | None = None, env: typing.Mapping[str, str] | None = None) -> Settings:
    """Load settings: defaults, then the TOML file (if any), then ``AUDITVEIL_*`` variables."""
    env = os.environ if env is None else env
    path = path or env.get("AUDITVEIL_CONFIG") or None
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError("the configuration file does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"the configuration file is not valid TOML ({exc})") from None
        except OSError:
            raise ConfigError("the configuration file cannot be read") from None
    top_types = _section_types(Settings)
    unknown = set(data) - set(top_types)
    if unknown:
        raise ConfigError(f"unknown section [{sorted(unknown)[0]}] in the configuration file")
    sections: dict[str, Any] = {}
    for sec_name, sec_type in top_types.items():
        raw_sec = data.get(sec_name, {})
        if not isinstance(raw_sec, dict):
            raise ConfigError(f"[{sec_name}] must be a table")
        hints = _section_types(sec_type)
        unknown_keys = set(raw_sec) - set(hints)
        if unknown_keys:
            raise ConfigError(f"unknown setting {sec_name}.{sorted(unknown_keys)[0]} in the configuration file")
        kwargs: dict[str, Any] = {}
        for name, typ in hints.items():
            where = f"{sec_name}.{name}"
            if name in raw_sec:
                if (sec_name, name) in _SECRET_FIELDS_FORBIDDEN_IN_FILE:
                    raise ConfigError(
                        f"{where} must not be written in the configuration file; "
                        f"use the environment variable or the matching *_file setting"
                    )
                kwargs[name] = _convert(raw_sec[name], typ, where)
            env_name = f"{ENV_PREFIX}{sec_name}_{name}".upper()
            if env_name in env:
                kwargs[name] = _convert(env[env_name], typ, env_name)
        sections[sec_name] = sec_type(**kwargs)
    settings = Settings(**sections)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if s.pkcs11.oaep_hash not in ("sha1", "sha256"):
        raise ConfigError("pkcs11.oaep_hash must be sha1 or sha256")
    if s.pkcs11.key_version < 1:
        raise ConfigError("pkcs11.key_version must be 1 or more")
    if s.tokenise.cache_size < 0:
        raise ConfigError("tokenise.cache_size must not be negative")
    if s.pipeline.batch_size < 1:
        raise ConfigError("pipeline.batch_size must be 1 or more")
    if s.reid.quorum < 1:
        raise ConfigError("reid.quorum must be 1 or more")
    if s.reid.max_tokens < 1 or s.reid.reveal_uses < 0 or s.reid.reveal_window_minutes < 0:
        raise ConfigError("reid.max_tokens must be 1 or more; reid.reveal_* must not be negative")
    if s.reid.reveal_uses == 0 and s.reid.reveal_window_minutes == 0:
        raise ConfigError("reid.reveal_uses 0 (unlimited) needs a reid.reveal_window_minutes bound")
    if s.kafka.start not in ("earliest", "latest"):
        raise ConfigError("kafka.start must be earliest or latest")


def with_overrides(settings: Settings, section: str, **changes: Any) -> Settings:
    """A copy of ``settings`` with some fields of one section replaced."""
    return dataclasses.replace(settings, **{section: dataclasses.replace(getattr(settings, section), **changes)})
