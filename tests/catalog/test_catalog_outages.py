"""A database blip at a step's start is waited out: opening the catalog (its migration check)
and reads retry like writes, with the same backoff; an error that waiting cannot cure raises
at once.

The Postgres tests put a TCP proxy between the catalog and the real server on 127.0.0.1:5432
that drops every connection during an outage, so the server itself (shared with other tests)
is never restarted."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from skyscript_assets.catalog import store
from skyscript_assets.catalog.store import Catalog, is_transient
from skyscript_assets.catalog.tables import Loss

PROV = dict(run_id="r", asset_key="keyframes", stage_version="1")


class FlakyProxy:
    """127.0.0.1:<port> forwarding to a Postgres server, except during an outage, when every
    connection (new or open) is cut."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut = 0  # connections dropped during outages
        self._down_until = 0.0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        netloc[-1] = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc="@".join(netloc)))

    def outage(self, seconds: float) -> None:
        """From now on for `seconds`, as if the server were restarting: open connections drop."""
        with self._lock:
            self._down_until = time.monotonic() + seconds
            for sock in self._open:
                self._close(sock)
            self._open.clear()

    def close(self) -> None:
        self.outage(0)
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                down = time.monotonic() < self._down_until
            if down:
                self.cut += 1
                self._close(client)
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        FlakyProxy._close(sink)

    @staticmethod
    def _close(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


@pytest.fixture
def proxy(postgres_url):
    parts = urlsplit(postgres_url)
    flaky = FlakyProxy((parts.hostname, parts.port or 5432))
    yield flaky
    flaky.close()


@pytest.fixture
def quick_retries(monkeypatch):
    """The production backoff, scaled down: 0.1, 0.2, 0.4, 0.8, 1.6, 3 s (about 6 s in all)."""
    monkeypatch.setattr(store, "RETRY_DELAYS_S", tuple(d / 5 for d in store.RETRY_DELAYS_S))


@pytest.mark.postgres
def test_opening_the_catalog_waits_out_a_postgres_outage(proxy, postgres_url, quick_retries):
    proxy.outage(1.5)
    started = time.monotonic()
    catalog = Catalog(proxy.url(postgres_url))  # connects and runs the migrations through the proxy
    assert time.monotonic() - started >= 1.5 and proxy.cut >= 1
    catalog.replace_partition_rows(
        asset_key="keyframes",
        partition="d1",
        tables=[Loss],
        rows=[Loss(drama_id="d1", stage="s", item="i", reason="r", partition="d1", **PROV)],
    )
    assert catalog.count(Loss, partition="d1") == 1
    catalog.dispose()


@pytest.mark.postgres
def test_reads_wait_out_a_postgres_outage(proxy, postgres_url, quick_retries):
    catalog = Catalog(proxy.url(postgres_url))
    catalog.replace_partition_rows(
        asset_key="keyframes",
        partition="d1",
        tables=[Loss],
        rows=[Loss(drama_id="d1", stage="s", item="i", reason="r", partition="d1", **PROV)],
    )
    cut_before = proxy.cut
    proxy.outage(1.5)  # drops the pooled connection too
    assert [loss.item for loss in catalog.losses(partition="d1")] == ["i"]
    assert catalog.count(Loss) == 1
    assert catalog.read(lambda session: session.execute(text("select count(*) from losses")).scalar_one()) == 1
    assert proxy.cut > cut_before  # the outage was met, not missed
    catalog.dispose()


@pytest.mark.postgres
def test_an_unknown_database_raises_at_once(postgres_url, monkeypatch):
    missing = postgres_url.rsplit("/", 1)[0] + "/skyscript_no_such_database"
    slept = []
    monkeypatch.setattr(store.time, "sleep", slept.append)
    with pytest.raises(OperationalError, match="does not exist"):
        Catalog(missing)
    assert slept == []  # not retried


def test_opening_a_sqlite_catalog_survives_failed_connects(tmp_path, monkeypatch, quick_retries):
    """Fault injection without a server: the first connections of the catalog's engines (the
    migration's included) fail the way a dropped network connection does."""
    failures = {"left": 3}
    make_engine = store.make_engine

    def flaky_make_engine(url):
        engine = make_engine(url)

        @event.listens_for(engine, "do_connect")
        def _refuse(*_):
            if failures["left"] > 0:
                failures["left"] -= 1
                raise sqlite3.OperationalError("server closed the connection unexpectedly")

        return engine

    monkeypatch.setattr(store, "make_engine", flaky_make_engine)
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    assert failures["left"] == 0
    assert catalog.count(Loss) == 0  # migrated: the table is there
    catalog.dispose()


def test_a_sql_error_is_not_retried(tmp_path, monkeypatch):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    slept = []
    monkeypatch.setattr(store.time, "sleep", slept.append)
    with pytest.raises(OperationalError, match="no such table"):
        catalog.read(lambda session: session.execute(text("select * from no_such_table")).all())
    assert slept == []
    catalog.dispose()


@pytest.mark.parametrize(
    "message, transient",
    [
        ("server closed the connection unexpectedly", True),
        ('connection to server at "127.0.0.1", port 5432 failed: Connection refused', True),
        ("FATAL:  the database system is starting up", True),
        ('FATAL:  database "x" does not exist', False),
        ('FATAL:  password authentication failed for user "u"', False),
        ('FATAL:  role "u" does not exist', False),
    ],
)
def test_which_connection_errors_are_transient(message, transient):
    assert is_transient(OperationalError("connect", {}, Exception(message))) is transient


def test_sqlite_busy_is_transient_and_a_missing_table_is_not():
    busy, missing = sqlite3.OperationalError("database is locked"), sqlite3.OperationalError("no such table: x")
    busy.sqlite_errorname, missing.sqlite_errorname = "SQLITE_BUSY", "SQLITE_ERROR"
    assert is_transient(OperationalError("select", {}, busy))
    assert not is_transient(OperationalError("select", {}, missing))
