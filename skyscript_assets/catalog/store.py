"""Opening the catalog, migrating it, and writing a partition's rows atomically.

A database restart or fail-over drops connections for a few seconds. Opening the catalog
(its migration check), every write and every read through `Catalog.read` wait that out with
the same backoff (`RETRY_DELAYS_S`, about 30 s in all); an error that waiting cannot cure (an
unknown database or role, a refused password, a missing table, a constraint) raises at once
(`is_transient`).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from skyscript_assets.catalog.tables import Base, EpisodeProgress, Loss

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# A database restart or fail-over drops connections for a few seconds: opening, writes and reads wait it out.
RETRY_DELAYS_S = (0.5, 1, 2, 4, 8, 15)
# Postgres SQLSTATEs worth another try: connection exceptions (class 08), the server shutting
# down or starting up, too many connections, and a transaction the server chose to abort.
_TRANSIENT_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01")
# A connection refused for one of these reasons is refused again on the next try (psycopg2
# reports connection-time errors without a SQLSTATE, so the message is all there is).
_PERMANENT_CONNECT_ERRORS = (
    "does not exist",
    "authentication failed",
    "no pg_hba.conf entry",
    "permission denied",
    "invalid dsn",
    "invalid connection option",
    "invalid integer value",
    "unsupported",
)
log = logging.getLogger(__name__)
T = TypeVar("T")
_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL lets the UI read while a run writes
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # pool_pre_ping: a Postgres restart between two stages costs a reconnect, not a failed run
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run the Alembic migrations up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


class Catalog:
    """The catalog database: tables in `tables.py`, one instance per process and URL."""

    def __init__(self, url: str, *, migrate: bool = True):
        """Open the catalog at `url` and bring its schema to the newest migration (once per
        process and URL). A database that is briefly unreachable is waited for, like a write."""
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            with _migrate_lock:
                if url not in _migrated:
                    # Alembic runs the migrations in one transaction where the database allows
                    # it (Postgres): an attempt cut off by a dropped connection is rolled back.
                    self.retrying(lambda: upgrade(url))
                    _migrated.add(url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def retrying(self, work: Callable[[], T]) -> T:
        """Run `work` (one whole transaction), again after a dropped connection, with backoff;
        an error that is not transient (see `is_transient`) raises at once."""
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            try:
                return work()
            except DBAPIError as exc:
                if delay is None or not is_transient(exc):
                    raise
                log.warning(
                    "catalog connection lost (%s); retry %d in %.1fs", type(exc.orig).__name__, attempt + 1, delay
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction, run again after a dropped connection, like a write.
        `work` must only read (or be safe to repeat); what it returns outlives the session
        (loaded rows stay usable: sessions do not expire them on commit)."""

        def attempt() -> T:
            with self.session() as session:
                return work(session)

        return self.retrying(attempt)

    def replace_partition_rows(
        self,
        *,
        asset_key: str,
        partition: str,
        rows: Sequence[Base],
        tables: Iterable[type[Base]],
    ) -> None:
        """Delete what `asset_key` wrote for `partition` in `tables`, insert `rows`, one transaction.

        Re-materializing a partition therefore never duplicates rows and never leaves
        a half-written state: readers see the old rows or the new ones. A dropped
        connection retries the whole transaction.
        """
        tables = list(tables)
        values = _insert_values(rows)

        def write() -> None:
            with self.session() as session:
                for table in tables:
                    session.execute(delete(table).where(table.asset_key == asset_key, table.partition == partition))
                for table, batch in values.items():
                    session.execute(insert(table), batch)

        self.retrying(write)

    def done_episodes(self, *, asset_key: str, partition: str, stage_version: str) -> dict[str, EpisodeProgress]:
        """Episodes `asset_key` finished for `partition` at `stage_version`, by episode id."""
        stmt = select(EpisodeProgress).where(
            EpisodeProgress.asset_key == asset_key,
            EpisodeProgress.partition == partition,
            EpisodeProgress.stage_version == stage_version,
        )
        return self.read(lambda session: {row.episode_id: row for row in session.scalars(stmt)})

    def replace_episode_rows(
        self,
        *,
        asset_key: str,
        partition: str,
        episode_id: str,
        rows: Sequence[Base],
        tables: Iterable[type[Base]],
        progress: EpisodeProgress,
    ) -> None:
        """Replace one episode's rows in `tables` and mark it done, in one transaction: after a
        crash an episode is either wholly written and marked, or not at all."""
        tables = list(tables)
        values = _insert_values([*rows, progress])

        def write() -> None:
            with self.session() as session:
                for table in [*tables, EpisodeProgress]:
                    session.execute(
                        delete(table).where(
                            table.asset_key == asset_key, table.partition == partition, table.episode_id == episode_id
                        )
                    )
                for table, batch in values.items():
                    session.execute(insert(table), batch)

        self.retrying(write)

    def forget_episodes_except(
        self, *, asset_key: str, partition: str, keep: set[str], tables: Iterable[type[Base]]
    ) -> int:
        """Drop rows of episodes no longer in the drama (a file removed from the landing zone)."""
        tables = [*tables, EpisodeProgress]

        def write() -> int:
            removed = 0
            with self.session() as session:
                for table in tables:
                    stmt = delete(table).where(table.asset_key == asset_key, table.partition == partition)
                    if keep:
                        stmt = stmt.where(table.episode_id.not_in(sorted(keep)))
                    removed += session.execute(stmt).rowcount or 0
            return removed

        return self.retrying(write)

    def count(self, table: type[Base], **filters) -> int:
        stmt = select(func.count()).select_from(table)
        for column, value in filters.items():
            stmt = stmt.where(getattr(table, column) == value)
        return self.read(lambda session: int(session.execute(stmt).scalar_one()))

    def losses(self, partition: str | None = None, stage: str | None = None) -> list[Loss]:
        stmt = select(Loss).order_by(Loss.id)
        if partition is not None:
            stmt = stmt.where(Loss.partition == partition)
        if stage is not None:
            stmt = stmt.where(Loss.stage == stage)
        return self.read(lambda session: list(session.scalars(stmt)))

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold the lock `name` (e.g. "keyframes@drama-7") for the block, or raise `LockHeld` at
        once when another process holds it. Postgres: a session advisory lock on a connection
        kept for the block; SQLite: an flock on a file beside the database. Both end with the
        process that holds them, so a run killed with `kill -9` never leaves a lock behind."""
        if self.engine.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            with self.engine.connect() as connection:
                if not connection.exec_driver_sql("SELECT pg_try_advisory_lock(%s)", (key,)).scalar():
                    raise LockHeld(name)
                try:
                    yield
                finally:
                    connection.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (key,))
                    connection.commit()
            return
        if self.engine.url.database in (None, "", ":memory:"):  # a private database: nobody else to exclude
            yield
            return
        folder = Path(self.engine.url.database).resolve().parent / ".skyscript-locks"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".lock")
        with open(path, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld(name) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def dispose(self) -> None:
        self.engine.dispose()


class LockHeld(RuntimeError):
    """Another run holds the lock: this one must not do the same work at the same time."""

    def __init__(self, name: str):
        super().__init__(f"another run is already working on {name}; this run stops without writing")
        self.name = name


def is_transient(exc: DBAPIError) -> bool:
    """Whether waiting may cure `exc`: a dropped or refused connection, a server restarting, a
    busy SQLite file. Not: an unknown database or role, a refused password, SQL errors,
    constraint violations."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)  # psycopg2, psycopg 3
    if sqlstate:
        return sqlstate.startswith(_TRANSIENT_SQLSTATES)
    sqlite_error = getattr(orig, "sqlite_errorname", None)
    if sqlite_error:
        return sqlite_error.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    message = str(orig).lower()
    return not any(sign in message for sign in _PERMANENT_CONNECT_ERRORS)


def _insert_values(rows: Sequence[Base]) -> dict[type[Base], list[dict]]:
    """ORM rows as plain column values per table (executemany inserts, safe to replay).

    Unset columns are left out so their defaults (created_at, autoincrement ids) apply."""
    by_table: dict[type[Base], list[dict]] = defaultdict(list)
    for row in rows:
        columns = row.__table__.columns
        by_table[type(row)].append({c.key: getattr(row, c.key) for c in columns if getattr(row, c.key) is not None})
    # executemany needs the same keys in every row of a batch: fill a gap with the column's
    # Python-side default, or NULL.
    for table, batch in by_table.items():
        keys = set().union(*batch)
        for entry in batch:
            for key in keys - entry.keys():
                default = table.__table__.columns[key].default
                if default is None:
                    entry[key] = None
                else:
                    entry[key] = default.arg(None) if default.is_callable else default.arg
    return by_table
