"""Key custody: the HSM session, key creation, and a private SoftHSM2 token for demos and tests."""

from pipeline.custody.hsm import HsmSession, hmac_key_label
from pipeline.custody.keys import KeyStatus, ensure_keys, key_status

__all__ = ["HsmSession", "KeyStatus", "ensure_keys", "hmac_key_label", "key_status"]
