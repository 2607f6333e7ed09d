"""Re-identification: custodian-approved reveal of tokens, with a verifiable audit trail."""

from pipeline.reid.auditlog import Verdict, verify_lines, verify_records
from pipeline.reid.db import Database
from pipeline.reid.digest import RequestFacts, canonical_request, decision_message, request_digest
from pipeline.reid.workflow import Opened, Opener, Reid, Request, RevealResult

__all__ = [
    "Database", "Opened", "Opener", "Reid", "Request", "RequestFacts", "RevealResult", "Verdict",
    "canonical_request", "decision_message", "request_digest", "verify_lines", "verify_records",
]
