"""The input manifest: re-runs pick up only new inputs; a crash neither loses nor duplicates."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pipeline.storage import fs
from pipeline.storage.manifest import MANIFEST_DIR, LocalInput, Manifest, input_digest, mark_done
from pipeline.storage.s3_exports import ExportObject, expand_s3_inputs, read_object
from tests.services.s3 import S3Server
from tests.storage import export_tree


def _process(objs: list[ExportObject], out: fs.Location, storage: object, manifest: Manifest,
             crash_after: int | None = None) -> list[str]:
    """A stand-in for the pipeline's contract: write the object's output (file name derived
    from the input, so a redo overwrites), and only then mark it done."""
    done: list[str] = []
    for n, obj in enumerate(objs):
        data = read_object(storage, obj)  # type: ignore[arg-type]
        name = input_digest(obj.uri, obj.version)[:20]
        fs.write_bytes_atomic(out, out.join("source=cloudtrail", f"part-{name}.bin"), gzip.decompress(data))
        if crash_after is not None and n == crash_after:
            raise KeyboardInterrupt  # output durable, marker not yet written
        manifest.mark_done(obj, records=1)
        done.append(obj.key)
    return done


@pytest.mark.s3
def test_incremental_runs_on_s3(s3: S3Server, fixtures_dir: Path) -> None:
    storage = s3.storage()
    src = s3.make_bucket("exports")
    tree = export_tree.build(s3.client(), src, fixtures_dir)
    out_uri = f"s3://{s3.make_bucket('out')}/events"
    out = fs.resolve(out_uri, storage)
    objs = expand_s3_inputs(tree.uri, storage, since="2026-04-28", until="2026-04-29")
    assert len(objs) > 6

    # Run 1 crashes after the 4th object's output is durable but before its marker.
    manifest = Manifest(out_uri, storage)
    with pytest.raises(KeyboardInterrupt):
        _process(list(manifest.pending(objs)), out, storage, manifest, crash_after=3)
    # Run 2 redoes exactly the unmarked ones; the redone output overwrites, never duplicates.
    manifest = Manifest(out_uri, storage)
    pending = manifest.pending(objs)
    assert [o.key for o in pending] == [o.key for o in objs][3:]
    _process(pending, out, storage, manifest)
    assert len(fs.list_files(out, out.join("source=cloudtrail"))) == len(objs)
    # Run 3: nothing new.
    assert Manifest(out_uri, storage).pending(objs) == []

    # New objects arrive (a new day) and one old object is replaced (new ETag).
    client = s3.client()
    new_key = next(iter(tree.events)).replace("/2026/04/28/", "/2026/04/29/").replace("T00", "T23")
    client.put_object(Bucket=src, Key=new_key, Body=gzip.compress(b'{"Records": []}'))
    replaced = objs[0]
    client.put_object(Bucket=src, Key=replaced.key, Body=gzip.compress(b'{"Records": [{}]}'))
    again = expand_s3_inputs(tree.uri, storage, since="2026-04-28", until="2026-04-29")
    assert sorted(o.key for o in Manifest(out_uri, storage).pending(again)) == sorted([new_key, replaced.key])

    # The markers hold digests, never object keys (which carry account ids).
    for path in fs.list_files(out, out.join(MANIFEST_DIR)):
        assert export_tree.ACCOUNT_A not in path and export_tree.ACCOUNT_B not in path
        body = fs.read_bytes(out, path)
        assert export_tree.ACCOUNT_A.encode() not in body and b"AWSLogs" not in body


def test_local_inputs_and_consolidation(tmp_path: Path) -> None:
    out_uri = str(tmp_path / "out")
    files = []
    for i in range(5):
        p = tmp_path / f"in-{i}.json"
        p.write_text("{}")
        files.append(LocalInput.of(str(p)))
    manifest = Manifest(out_uri)
    assert manifest.pending(files) == files
    for f in files[:3]:
        manifest.mark_done(f)
    assert Manifest(out_uri).pending(files) == files[3:]
    # Many markers fold into one snapshot; the answer does not change.
    folded = Manifest(out_uri).consolidate()
    assert folded == 3
    loc = fs.resolve(out_uri)
    names = [p.rsplit("/", 1)[-1] for p in fs.list_files(loc, loc.join(MANIFEST_DIR))]
    assert len(names) == 1 and names[0].startswith("snapshot-")
    mark_done(out_uri, files[3].uri, files[3].version)
    assert Manifest(out_uri).pending(files) == files[4:]
    assert Manifest(out_uri).consolidate() == 1
    assert Manifest(out_uri).pending(files) == files[4:]
    # A changed file is pending again.
    Path(files[0].uri).write_text('{"changed": true}')
    changed = LocalInput.of(files[0].uri)
    assert Manifest(out_uri).pending([changed]) == [changed]


def test_damaged_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    from pipeline.errors import SinkError

    out = fs.resolve(str(tmp_path / "out"))
    fs.write_bytes_atomic(out, out.join(MANIFEST_DIR, "snapshot-1.json"), b"{broken")
    with pytest.raises(SinkError, match="manifest snapshot is damaged"):
        Manifest(str(tmp_path / "out")).done()
