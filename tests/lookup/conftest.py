"""The lookup tests reuse the re-identification fixtures (keys, vaults, the in-process CLI)."""

from tests.reid.conftest import fresh_vault, keys, run_cli

__all__ = ["fresh_vault", "keys", "run_cli"]
