"""The analysts' data dictionary documents exactly the columns and domains the code writes."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.schema import COLUMNS, EVENT_SCHEMA, PARTITION_COLUMNS
from pipeline.tokenise.domains import DOMAINS

DOCS = Path(__file__).resolve().parent.parent / "schemas" / "events.md"


def test_every_column_is_documented_in_order() -> None:
    text = DOCS.read_text()
    documented = re.findall(r"^\| `([a-z_]+)` \| (?:string|timestamp|map|bool|list|partition)", text, re.M)
    assert documented == [*COLUMNS, *PARTITION_COLUMNS]


def test_every_domain_is_documented() -> None:
    text = DOCS.read_text()
    table = set(re.findall(r"^\| `([a-z]+)` \| ", text, re.M))
    assert set(DOMAINS) <= table


def test_schema_carries_its_version() -> None:
    assert EVENT_SCHEMA.metadata[b"auditveil.schema_version"] == b"1"
