from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.sanitise.policy import load_policies, parse_policy


def base(**kw: object) -> dict[str, object]:
    return {"format": "auditveil-policy/v1", "source": "cloudtrail", **kw}


def test_shipped_policies_load_and_deny_by_default() -> None:
    pols = load_policies()
    assert set(pols) >= {"cloudtrail", "vault"}
    ct = pols["cloudtrail"]
    assert ct.columns["actor_arn"].action == "tokenise" and ct.columns["actor_arn"].domain == "prn"
    assert ct.extra_rule("errorMessage") is None  # not named: dropped
    assert ct.extra_rule("requestParameters.sourceEncryptionContext.customer_id") is not None
    assert pols["vault"].vault_hmac == "tokenise"


@pytest.mark.parametrize(("spec", "message"), [
    ({"columns": {"no_such_column": "keep"}}, "unknown column"),
    ({"columns": {"actor_arn": {"tokenise": "nope"}}}, "unknown identifier domain"),
    ({"columns": {"actor_arn": {"generalise": "nope"}}}, "unknown generaliser"),
    ({"columns": {"actor_arn": "tokenise"}}, "bare action"),
    ({"columns": {"actor_arn": {"tokenise": "prn", "keep_values_of": ["a"]}}}, "map columns"),
    ({"vault_hmac": "shred"}, "vault_hmac"),
    ({"surprise": 1}, "unknown top-level key"),
])
def test_bad_policies_are_clear_config_errors(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy(base(**spec), "policy test.toml")


def test_wrong_format_and_missing_sources(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an auditveil-policy/v1"):
        parse_policy({"source": "x"}, "p")
    (tmp_path / "cloudtrail.toml").write_text('format = "auditveil-policy/v1"\nsource = "cloudtrail"\n')
    with pytest.raises(ConfigError, match="no policy for source vault"):
        load_policies(str(tmp_path))
    (tmp_path / "vault.toml").write_text("not = [valid")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_policies(str(tmp_path))


def test_prefix_rules_most_specific_first() -> None:
    p = parse_policy(base(extra={"a.*": "keep", "a.b.*": "drop"}), "p")
    assert p.extra_rule("a.x").action == "keep"  # type: ignore[union-attr]
    assert p.extra_rule("a.b.c").action == "drop"  # type: ignore[union-attr]
    assert p.extra_rule("b") is None
