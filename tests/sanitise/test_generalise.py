from __future__ import annotations

from pipeline.sanitise.generalise import arn_account, ip_or_service, user_agent, vault_error, vault_path


def fake(domain: str, value: str, sub: str = "") -> str:
    return f"<{domain}>"


def test_kms_arn_keeps_key_and_tokenises_account() -> None:
    arn = "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert arn_account(arn, fake) == "arn:aws:kms:eu-central-1:<acct>:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert arn_account("arn:aws:kms:eu-west-1:111122223333:alias/orders", fake) == (
        "arn:aws:kms:eu-west-1:<acct>:alias/orders")
    assert arn_account("1234abcd-12ab-34cd-56ef-1234567890ab", fake) == "1234abcd-12ab-34cd-56ef-1234567890ab"
    assert arn_account("arn:aws:iam::111122223333:user/alice", fake) == "<res>"
    assert arn_account("arn:aws:s3:::bucket/eu-user-1/file.pdf", fake) == "<res>"
    assert arn_account("some name", fake) == "<res>"


def test_ip_or_service() -> None:
    assert ip_or_service("203.0.113.7", fake) == "<ip>"
    assert ip_or_service("2001:db8::1", fake) == "<ip>"
    assert ip_or_service("s3.amazonaws.com", fake) == "s3.amazonaws.com"
    assert ip_or_service("AWS Internal", fake) == "AWS Internal"
    assert ip_or_service("laptop.corp.example", fake) == "<ip>"


def test_user_agent_keeps_only_the_first_product() -> None:
    assert user_agent("aws-cli/2.15.22 Python/3.11.6 Linux/6.1.79 exe/x86_64", fake) == "aws-cli/2.15.22"
    assert user_agent("s3.amazonaws.com", fake) == "s3.amazonaws.com"
    assert user_agent("alice's laptop", fake) == "<agent>"


def test_vault_path_keeps_mount_and_verb() -> None:
    assert vault_path("transit/encrypt/customer-records", fake) == "transit/encrypt/customer-records"
    assert vault_path("secret/data/customers/eu-user-1", fake) == "secret/data/<path>"
    assert vault_path("auth/userpass/login/alice", fake) == "auth/userpass/login/<path>"
    assert vault_path("sys/policies/acl/admins", fake) == "sys/policies/<path>"


def test_vault_error_classes() -> None:
    assert vault_error("1 error occurred:\n\t* permission denied\n\n", fake) == "permission_denied"
    assert vault_error("no handler for route 'secret/data/alice@example.com'", fake) == "error"
