"""The normalised, pseudonymised event schema (version 1), one for every source.

Documented for analysts in ``schemas/events.md``; a test keeps the two in step. Files are
Hive-partitioned by ``source`` and ``event_date`` (not stored inside the files).
Changing a column's meaning or type needs a new schema version.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1"

RESOURCE = pa.struct([pa.field("type", pa.string()), pa.field("ref", pa.string())])
STRING_MAP = pa.map_(pa.string(), pa.string())

EVENT_FIELDS: tuple[pa.Field, ...] = (
    pa.field("event_id", pa.string()),
    pa.field("event_time", pa.timestamp("us", tz="UTC")),
    pa.field("service", pa.string()),
    pa.field("operation", pa.string()),
    pa.field("outcome", pa.string()),
    pa.field("error_code", pa.string()),
    pa.field("region", pa.string()),
    pa.field("key_ref", pa.string()),
    pa.field("actor_type", pa.string()),
    pa.field("actor_id", pa.string()),
    pa.field("actor_arn", pa.string()),
    pa.field("actor_name", pa.string()),
    pa.field("actor_account", pa.string()),
    pa.field("actor_access_key", pa.string()),
    pa.field("actor_attributes", STRING_MAP),
    pa.field("source_ip", pa.string()),
    pa.field("user_agent", pa.string()),
    pa.field("encryption_context", STRING_MAP),
    pa.field("request_id", pa.string()),
    pa.field("read_only", pa.bool_()),
    pa.field("resources", pa.list_(RESOURCE)),
    pa.field("recipient_account", pa.string()),
    pa.field("event_type", pa.string()),
    pa.field("extra", pa.string()),
)

COLUMNS: tuple[str, ...] = tuple(f.name for f in EVENT_FIELDS)
PARTITION_COLUMNS: tuple[str, ...] = ("source", "event_date")
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"

EVENT_SCHEMA = pa.schema(
    list(EVENT_FIELDS),
    metadata={"auditveil.schema_version": SCHEMA_VERSION, "auditveil.canonical_version": "1"},
)

# Columns whose values are maps of name -> (tokenised) value.
MAP_COLUMNS = frozenset(("actor_attributes", "encryption_context"))
