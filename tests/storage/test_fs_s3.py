"""Output storage on a real S3-compatible server: atomic writes, retries, clear errors."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Secret
from pipeline.errors import ConfigError, SinkError
from pipeline.storage import fs, s3client
from tests.services.s3 import ACCESS_KEY, SECRET_KEY, FaultProxy, S3Server

pytestmark = pytest.mark.s3


def _table(rows: int, seed: int = 0) -> pa.Table:
    return pa.table({
        "n": pa.array(range(seed, seed + rows), pa.int64()),
        "text": pa.array([f"row-{i:09d}-" + "x" * 40 for i in range(rows)]),
    })


def test_round_trip_list_delete(s3: S3Server) -> None:
    bucket = s3.make_bucket("out")
    loc = fs.resolve(f"s3://{bucket}/events", s3.storage())
    fs.check_writable(loc)
    fs.write_bytes_atomic(loc, loc.join("a", "one.bin"), b"hello")
    fs.write_parquet_atomic(loc, loc.join("a", "t.parquet"), _table(10))
    fs.write_bytes_atomic(loc, loc.join("b", "two.bin"), b"x" * 10)
    assert fs.read_bytes(loc, loc.join("a", "one.bin")) == b"hello"
    assert fs.list_files(loc, loc.base, ".bin") == [loc.join("a", "one.bin"), loc.join("b", "two.bin")]
    assert fs.exists(loc, loc.join("a", "t.parquet"))
    meta = pq.read_metadata(loc.fs.open_input_file(loc.join("a", "t.parquet")))
    assert meta.num_rows == 10
    assert meta.row_group(0).column(0).compression == "ZSTD"
    fs.delete(loc, loc.join("a", "one.bin"))
    fs.delete(loc, loc.join("a", "one.bin"))  # idempotent
    assert not fs.exists(loc, loc.join("a", "one.bin"))


def test_reader_never_sees_a_half_written_parquet(s3: S3Server) -> None:
    """A reader listing and opening files while big Parquet files are written sees only whole ones."""
    bucket = s3.make_bucket("atomic")
    loc = fs.resolve(f"s3://{bucket}/events", s3.storage())
    tables = [_table(150_000, seed=i * 1_000_000) for i in range(4)]
    stop = threading.Event()
    seen: dict[str, int] = {}
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            for path in fs.list_files(loc, loc.base, ".parquet"):
                try:
                    seen[path] = pq.read_table(loc.fs.open_input_file(path)).num_rows
                except Exception as exc:  # a partial object would fail to parse
                    problems.append(type(exc).__name__)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i, table in enumerate(tables):
            fs.write_parquet_atomic(loc, loc.join(f"part-{i}.parquet"), table)
    finally:
        time.sleep(0.3)
        stop.set()
        t.join()
    assert problems == []
    assert seen and all(rows == 150_000 for rows in seen.values())


def test_interrupted_upload_leaves_nothing_visible(s3: S3Server, s3_proxy: FaultProxy) -> None:
    """Every connection is cut mid-upload: the write fails cleanly and no object appears."""
    bucket = s3.make_bucket("cut")
    loc = fs.resolve(f"s3://{bucket}/events", s3.storage(via_proxy=True, s3_retry_seconds=2))
    s3_proxy.cut_uploads_after(200_000)
    with pytest.raises(SinkError) as err:
        fs.write_bytes_atomic(loc, loc.join("big.parquet"), b"P" * 3_000_000)
    assert "kept failing" in str(err.value)
    assert s3_proxy.failures >= 1
    s3_proxy.heal()
    direct = fs.resolve(f"s3://{bucket}/events", s3.storage())
    assert fs.list_files(direct, direct.base) == []


def test_multipart_upload_is_aborted_on_failure(s3: S3Server, s3_proxy: FaultProxy,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the multipart threshold, a failed part aborts the upload: nothing is published."""
    monkeypatch.setattr(fs, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    bucket = s3.make_bucket("mpu")
    loc = fs.resolve(f"s3://{bucket}/e", s3.storage(via_proxy=True, s3_retry_seconds=1))
    s3_proxy.cut_uploads_after(2_000_000)
    with pytest.raises(SinkError):
        fs.write_bytes_atomic(loc, loc.join("big.bin"), b"M" * 12 * 1024 * 1024)
    s3_proxy.heal()
    client = s3.client()
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    # ... and the same write succeeds once the network is healthy.
    fs.write_bytes_atomic(loc, loc.join("big.bin"), b"M" * 12 * 1024 * 1024)
    assert client.head_object(Bucket=bucket, Key="e/big.bin")["ContentLength"] == 12 * 1024 * 1024


def test_retries_while_the_server_fails_for_a_while(s3: S3Server, s3_proxy: FaultProxy) -> None:
    bucket = s3.make_bucket("retry")
    loc = fs.resolve(f"s3://{bucket}/events", s3.storage(via_proxy=True, s3_retry_seconds=20))
    fs.write_bytes_atomic(loc, loc.join("warm.bin"), b"warm")  # opens a keep-alive connection
    s3_proxy.fail_for(2.5, mode="503")
    started = time.monotonic()
    fs.write_parquet_atomic(loc, loc.join("during.parquet"), _table(1000))
    assert time.monotonic() - started >= 2.0
    assert s3_proxy.failures >= 2
    s3_proxy.fail_for(1.5, mode="reset")
    assert fs.read_bytes(loc, loc.join("warm.bin")) == b"warm"
    assert fs.list_files(loc, loc.base, ".parquet") == [loc.join("during.parquet")]


def test_gives_up_with_a_clear_error_when_the_failure_lasts(s3: S3Server, s3_proxy: FaultProxy) -> None:
    bucket = s3.make_bucket("down")
    loc = fs.resolve(f"s3://{bucket}/events", s3.storage(via_proxy=True, s3_retry_seconds=2))
    s3_proxy.fail_for(60, mode="503")
    started = time.monotonic()
    with pytest.raises(SinkError) as err:
        fs.write_bytes_atomic(loc, loc.join("x.bin"), b"x")
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 15
    msg = str(err.value)
    assert msg == ("cannot write an output file: the storage endpoint kept failing (server errors or "
                   "timeouts) until the retry budget storage.s3_retry_seconds was spent; try again later")
    assert bucket not in msg and "127.0.0.1" not in msg
    with pytest.raises(SinkError, match="kept failing"):
        fs.list_files(loc, loc.base)


def test_bad_credentials_are_one_clear_sentence(s3: S3Server) -> None:
    if s3.kind == "moto":
        pytest.skip("moto's server accepts any credentials")
    bucket = s3.make_bucket("creds")
    bad = s3.storage(s3_secret_key=Secret("wrong-secret-wrong-secret"))
    loc = fs.resolve(f"s3://{bucket}/events", bad)
    for action in (lambda: fs.check_writable(loc), lambda: fs.write_bytes_atomic(loc, loc.join("x"), b"x"),
                   lambda: fs.list_files(loc, loc.base)):
        with pytest.raises(SinkError) as err:
            action()
        assert "rejected the credentials" in str(err.value)
        assert "wrong-secret" not in str(err.value) and ACCESS_KEY not in str(err.value)


def test_missing_bucket_is_one_clear_sentence(s3: S3Server) -> None:
    loc = fs.resolve("s3://auditveil-no-such-bucket/events", s3.storage())
    with pytest.raises(SinkError) as err:
        fs.check_writable(loc)
    assert "bucket does not exist" in str(err.value)
    assert "auditveil-no-such-bucket" not in str(err.value)
    with pytest.raises(SinkError, match="bucket does not exist"):
        fs.write_bytes_atomic(loc, loc.join("x"), b"x")


def test_secret_without_access_key_setting_is_a_config_error(s3: S3Server) -> None:
    st = s3.storage(s3_secret_key=None)
    with pytest.raises(ConfigError) as err:
        s3client.client(st)
    assert SECRET_KEY not in str(err.value)


def test_local_writes_are_atomic_and_hidden_while_written(tmp_path: object) -> None:
    loc = fs.resolve(str(tmp_path))
    fs.write_parquet_atomic(loc, loc.join("source=vault", "p.parquet"), _table(5))
    assert fs.list_files(loc, loc.base) == [loc.join("source=vault", "p.parquet")]
    assert pq.read_table(loc.join("source=vault", "p.parquet")).num_rows == 5
