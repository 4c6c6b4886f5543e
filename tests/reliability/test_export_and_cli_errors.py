"""`skyscript export` into a hostile destination, and CLI errors: one line, no traceback, no secret.

Run as a user runs them: the CLI in a subprocess with its own SKYSCRIPT_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from test_cli import _released_drama  # a drama released offline into skyscript_home's catalog

SECRET = "hunter2-Secret-Pa55"


def _skyscript(*args, home: Path, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSCRIPT_", "DAGSTER_"))}
    environ.update(SKYSCRIPT_HOME=str(home), **env)
    return subprocess.run(
        [sys.executable, "-m", "skyscript_assets.cli", *args], capture_output=True, text=True, env=environ, timeout=300
    )


def _one_error_line(proc, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    # The catalog's retry warnings may precede it; the error itself is one line.
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("skyscript")]
    return line


def _rows(folder: Path) -> int:
    return ds.dataset(str(folder / "data"), format="parquet").count_rows()  # what a data/*.parquet glob loads


def test_export_refuses_a_non_empty_out_and_replaces_it_whole_with_overwrite(skyscript_home, tmp_path):
    drama = _released_drama(skyscript_home)
    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    out = tmp_path / "export"
    assert _skyscript("export", drama, "--out", str(out), home=skyscript_home).returncode == 0
    released = _rows(out)
    assert released == 2

    stale = out / "data" / "part-09999.parquet"  # a shard of some older export
    stale.write_bytes((out / "data" / "part-00000.parquet").read_bytes())
    line = _one_error_line(_skyscript("export", drama, "--out", str(out), home=skyscript_home), 2)
    assert "is not empty" in line and "--overwrite" in line
    assert stale.exists()  # refused: nothing touched

    proc = _skyscript("export", drama, "--out", str(out), "--overwrite", home=skyscript_home)
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists() and _rows(out) == released  # 2 rows, not 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary folder left beside it

    empty = tmp_path / "empty"
    empty.mkdir()
    assert _skyscript("export", drama, "--format", "jsonl", "--out", str(empty), home=skyscript_home).returncode == 0
    assert [p.name for p in empty.iterdir()] == ["pairs.jsonl"]


def test_export_never_follows_links_planted_in_the_destination(skyscript_home, tmp_path):
    drama = _released_drama(skyscript_home)
    victim = tmp_path / "victim"
    (victim / "data").mkdir(parents=True)
    (victim / "README.md").write_text("precious")
    (victim / "data" / "part-00000.parquet").write_text("precious")

    out = tmp_path / "export"
    out.mkdir()
    os.symlink(victim / "README.md", out / "README.md")
    os.symlink(victim / "data", out / "data")
    proc = _skyscript("export", drama, "--out", str(out), "--overwrite", home=skyscript_home)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "README.md").is_symlink() and not (out / "data").is_symlink()
    assert _rows(out) == 2

    os.symlink(victim, tmp_path / "linked")  # --out itself a link
    line = _one_error_line(_skyscript("export", drama, "--out", str(tmp_path / "linked"), home=skyscript_home), 2)
    assert "is a symlink" in line
    proc = _skyscript("export", drama, "--out", str(tmp_path / "linked"), "--overwrite", home=skyscript_home)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "linked").is_symlink() and _rows(tmp_path / "linked") == 2

    assert (victim / "README.md").read_text() == "precious"
    assert (victim / "data" / "part-00000.parquet").read_text() == "precious"
    assert sorted(p.name for p in victim.rglob("*")) == ["README.md", "data", "part-00000.parquet"]


def test_a_bad_out_is_one_line(skyscript_home, tmp_path):
    drama = _released_drama(skyscript_home)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = {
        str(a_file): "is a file, not a folder",
        str(a_file / "below"): "cannot write beside --out",
        "/proc/version/out": "cannot write beside --out",
    }
    for out, words in cases.items():
        line = _one_error_line(_skyscript("export", drama, "--out", out, home=skyscript_home), 2)
        assert words in line, (out, line)
    assert a_file.read_text() == "x"

    line = _one_error_line(
        _skyscript("export", drama, "--format", "csv", "--out", str(tmp_path / "o"), home=skyscript_home), 2
    )
    assert "invalid choice" in line and "--help" in line  # a usage mistake, one line too


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://nobody:{SECRET}@127.0.0.1:1/x",  # nothing listens: refused after the catalog's retries
        f"not a url {SECRET}",
        f"mysql+nosuchdriver://nobody:{SECRET}@127.0.0.1/x",
    ],
)
def test_a_bad_database_url_is_one_line_without_its_password(tmp_path, url):
    proc = _skyscript(
        "export",
        "some-drama",
        "--out",
        str(tmp_path / "out"),
        home=tmp_path / "home",
        SKYSCRIPT_DATABASE_URL=url,
        OPENAI_API_KEY="sk-" + SECRET,
    )
    line = _one_error_line(proc, 1)
    assert line.startswith("skyscript: catalog database") and "--debug" in line
    assert SECRET not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists()

    if url.startswith("postgresql"):
        return  # the traceback of the slow case is the same as the others'
    debug = _skyscript(
        "--debug",
        "export",
        "some-drama",
        "--out",
        str(tmp_path / "out"),
        home=tmp_path / "home",
        SKYSCRIPT_DATABASE_URL=url,
        OPENAI_API_KEY="sk-" + SECRET,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert SECRET not in debug.stderr + debug.stdout
