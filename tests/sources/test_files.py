from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.errors import InputError
from pipeline.sources.files import discover, is_digest_path, read_task


def test_discovery_recurses_skips_hidden_and_digests(tmp_path: Path) -> None:
    ct = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail" / "eu-west-1" / "2026" / "11" / "27"
    dg = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail-Digest" / "eu-west-1" / "2026" / "11" / "27"
    ct.mkdir(parents=True)
    dg.mkdir(parents=True)
    (ct / "a.json.gz").write_bytes(b"x")
    (dg / "d.json.gz").write_bytes(b"x")
    (tmp_path / ".hidden").write_bytes(b"x")
    found = discover([str(tmp_path)])
    assert [Path(t.path).name for t in found.tasks] == ["a.json.gz"]
    assert found.digests_skipped == 1
    assert "111122223333" not in found.tasks[0].display


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        discover([str(tmp_path / "nope-111122223333")])
    try:
        discover([str(tmp_path / "nope-111122223333")])
    except InputError as exc:
        assert "111122223333" not in str(exc)


def test_large_line_files_are_split_on_line_boundaries(tmp_path: Path) -> None:
    lines = [orjson.dumps({"eventName": "Decrypt", "eventID": str(i), "pad": "x" * 50}) for i in range(2000)]
    f = tmp_path / "events.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    found = discover([str(f)], split_bytes=10_000)
    assert len(found.tasks) > 5
    seen: list[bytes] = []
    for t in found.tasks:
        chunk = read_task(t)
        assert chunk.endswith(b"\n")
        got = [ln for ln in chunk.split(b"\n") if ln]
        assert got[0] == lines[t.first_line - 1]
        seen.extend(got)
    assert seen == lines
    assert len({t.task_id for t in found.tasks}) == len(found.tasks)


def test_json_documents_are_never_split(tmp_path: Path) -> None:
    f = tmp_path / "doc.json"
    f.write_bytes(orjson.dumps({"Records": [{"eventName": "x" * 100}] * 500}, option=orjson.OPT_INDENT_2))
    assert len(discover([str(f)], split_bytes=1000).tasks) == 1


def test_digest_paths() -> None:
    assert is_digest_path("a/AWSLogs/1/CloudTrail-Digest/eu-west-1/x.json.gz")
    assert not is_digest_path("a/AWSLogs/1/CloudTrail/eu-west-1/x.json.gz")


@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_ranges_come_in_a_multiple_of_the_worker_count_and_about_equal(tmp_path: Path, parts: int) -> None:
    lines = [orjson.dumps({"eventName": "Decrypt", "eventID": str(i), "pad": "x" * 50}) for i in range(3000)]
    f = tmp_path / "events.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    found = discover([str(f)], split_bytes=50_000, parts=parts)
    sizes = [t.size for t in found.tasks]
    assert len(sizes) % parts == 0
    assert len(sizes) >= -(-f.stat().st_size // 50_000)  # never longer than split_bytes (but for the last line)
    assert max(sizes) - min(sizes) < 200  # equal but for where the lines end (lines here: 84 bytes)
    assert [ln for t in found.tasks for ln in read_task(t).split(b"\n") if ln] == lines
