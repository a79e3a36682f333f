"""`sqeval score --scheduler`: the per-file jobs on a Dask cluster give the same CSV."""

from __future__ import annotations

import sys

from typer.testing import CliRunner

from sqeval.cli import app

from conftest import write

runner = CliRunner()


def test_local_cluster_csv_equals_local_run(tmp_path, golden):
    s, e, rate, _ = golden
    for k in range(4):
        write(tmp_path / "clean" / f"f{k}.wav", s, rate)
        write(tmp_path / "noisy" / f"f{k}.wav", e, rate)
        write(tmp_path / "enh" / f"f{k}.wav", s + (k + 1) * (e - s) / 5, rate)
    write(tmp_path / "enh" / "extra.wav", e, rate)  # an error row must come back too
    base = ["score", str(tmp_path / "clean"), str(tmp_path / "enh"), "--noisy",
            str(tmp_path / "noisy"), "--metrics", "snr,sdr,stoi,estoi,pesq_wb", "--no-cache"]
    local = runner.invoke(app, [*base, "--jobs", "1", "--csv", str(tmp_path / "local.csv")])
    dask = runner.invoke(app, [*base, "--jobs", "2", "--scheduler", "local",
                               "--csv", str(tmp_path / "dask.csv")])
    assert local.exit_code == 3 and dask.exit_code == 3, dask.output
    assert (tmp_path / "local.csv").read_text() == (tmp_path / "dask.csv").read_text()


def test_scheduler_errors_say_what_to_do(tmp_path, golden, monkeypatch):
    s, _, rate, _ = golden
    write(tmp_path / "clean" / "a.wav", s, rate)
    write(tmp_path / "enh" / "a.wav", s, rate)
    args = ["score", str(tmp_path / "clean"), str(tmp_path / "enh"), "--metrics", "snr"]
    unreachable = runner.invoke(app, [*args, "--scheduler", "tcp://127.0.0.1:9"])
    assert unreachable.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in " ".join(
        unreachable.stderr.split())
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    missing = runner.invoke(app, [*args, "--scheduler", "local", "--no-cache"])
    assert missing.exit_code == 2 and "pip install 'sqeval[dask]'" in " ".join(
        missing.stderr.split())
