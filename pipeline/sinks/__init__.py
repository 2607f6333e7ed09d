"""Sinks: pseudonymised events (analysts), sealed lookup entries (custodians), dead letters (operators)."""

from pipeline.sinks.dead_letters import DEAD_LETTER_DIR, DEAD_LETTER_SCHEMA, write_dead_letters
from pipeline.sinks.events import WrittenFile, write_events
from pipeline.sinks.lookup import write_lookup

__all__ = ["DEAD_LETTER_DIR", "DEAD_LETTER_SCHEMA", "WrittenFile", "write_dead_letters", "write_events",
           "write_lookup"]
