"""Sanitise: the declarative field policy applied to normalised records."""

from pipeline.sanitise.policy import Policy, Rule, load_policies
from pipeline.sanitise.sanitiser import SanitisedBatch, Sanitiser

__all__ = ["Policy", "Rule", "SanitisedBatch", "Sanitiser", "load_policies"]
