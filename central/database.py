"""The centre's database: where it is (a SQLite file, the default, or a PostgreSQL URL),
its tables, and the migrations that bring an older database up to this version.

One schema for both engines, written once with SQLAlchemy Core: the store
(``epic.central.store``) and the pending latents (``epic.central.pending``) never spell
SQL for one engine. What differs is said here only:

* **SQLite**: WAL, ``synchronous=NORMAL`` (durable to the last commit across a killed
  process), a busy timeout, and ``BEGIN IMMEDIATE`` for a writing transaction so that it
  takes the write lock up front instead of failing half-way (SQLAlchemy's documented
  recipe: pysqlite's own transaction handling is switched off).
* **PostgreSQL** (``postgresql://user:pass@host/db``, driven by psycopg 3): one database
  may hold many deployments (every row names its deployment).

Migrations: table ``schema_version`` holds the version applied; ``Database.open`` runs the
steps above it in one transaction. Version 1 is the schema of 2026-12-05 (the tables that
SQLite files of earlier versions already hold, so they open with what they hold); version 2
puts the deployment in every key, so that one database holds many deployments; version 3
keeps what each centre shows (its devices' health as the monitor sees it, and its own health
in ``centres``), so that ``epic api`` processes serve every deployment from the database.

Live events: on PostgreSQL every write that changes what a monitor shows also sends
``NOTIFY epic_events, '<deployment>'`` in its transaction (``Database.notify``), so API
processes wake when it commits; SQLite has no such thing, and they poll it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert

__all__ = [
    "NOTIFY_CHANNEL",
    "SCHEMA_VERSION",
    "Database",
    "DatabaseError",
    "centres",
    "devices",
    "is_url",
    "maps",
    "metadata",
    "pending",
]

DatabaseError = SQLAlchemyError  # what a failing database raises, whichever the engine

metadata = MetaData()

# SQLite aliases the row id only for a column declared exactly INTEGER PRIMARY KEY.
_SEQ = BigInteger().with_variant(Integer, "sqlite")


def _map_columns() -> list[Column]:
    return [
        Column("sample_id", Text, nullable=False),
        Column("version", Integer, nullable=False),
        Column("seq", BigInteger, nullable=False),  # stores, counted per deployment
        Column("first_seq", BigInteger, nullable=False),
        Column("deployment", Text, nullable=False),
        Column("model_hash", Text, nullable=False),
        Column("partial", Integer, nullable=False),
        Column("devices_used", Text, nullable=False),
        Column("devices_missing", Text, nullable=False),
        Column("nz", Integer, nullable=False),
        Column("nx", Integer, nullable=False),
        Column("velocity", LargeBinary, nullable=False),
        Column("acquired_ns", BigInteger),
        Column("first_arrival_ns", BigInteger, nullable=False),
        Column("last_arrival_ns", BigInteger, nullable=False),
        Column("decode_start_ns", BigInteger, nullable=False),
        Column("decode_end_ns", BigInteger, nullable=False),
        Column("stored_ns", BigInteger),
        Column("decode_ms", Float, nullable=False),
        Column("end_to_end_ms", Float),
        Column("velocity_min", Float, nullable=False),
        Column("velocity_max", Float, nullable=False),
        Column("velocity_mean", Float, nullable=False),
        Column("ssim", Float),
    ]


# -- the tables now (version 2): one database holds many deployments, each row names its own
maps = Table(
    "maps",
    metadata,
    *_map_columns(),
    PrimaryKeyConstraint("deployment", "sample_id", "version"),
    UniqueConstraint("deployment", "seq"),
    Index("maps_by_first_seq", "deployment", "first_seq"),
)

devices = Table(
    "devices",
    metadata,
    Column("deployment", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("health", Text, nullable=False),  # the counters a restarted centre restores
    Column("updated_ns", BigInteger, nullable=False),
    Column("snapshot", Text),  # DeviceHealth as JSON: what the monitor shows (version 3)
    PrimaryKeyConstraint("deployment", "id"),
)

# One row a deployment: the active centre's Health as JSON, rewritten every few seconds.
centres = Table(
    "centres",
    metadata,
    Column("deployment", Text, primary_key=True),
    Column("health", Text, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
)

pending = Table(
    "pending",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("deployment", Text, nullable=False),
    Column("sample_id", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("arrival_ns", BigInteger, nullable=False),
    UniqueConstraint("deployment", "sample_id", "device_id"),
)

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

# -- version 1 (2026-12-05), frozen: one deployment a database
_v1_metadata = MetaData()
Table(
    "maps",
    _v1_metadata,
    *_map_columns(),
    PrimaryKeyConstraint("sample_id", "version"),
    UniqueConstraint("seq"),
    Index("ix_maps_first_seq", "first_seq"),
)
Table(
    "devices",
    _v1_metadata,
    Column("id", Text, primary_key=True),
    Column("health", Text, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
)
Table(
    "pending",
    _v1_metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("sample_id", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("arrival_ns", BigInteger, nullable=False),
    UniqueConstraint("sample_id", "device_id"),
)


# -- version 2 (2026-12-05), frozen where version 3 changed it
_v2_devices = Table(
    "devices",
    MetaData(),
    Column("deployment", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("health", Text, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    PrimaryKeyConstraint("deployment", "id"),
)


def _v1(conn: Connection, deployment: str) -> None:
    """The tables of one deployment. checkfirst: files from before versions hold them."""
    _v1_metadata.create_all(conn, checkfirst=True)


def _v2(conn: Connection, deployment: str) -> None:
    """Many deployments in one database: ``deployment`` joins every key, and the rows of
    ``devices`` and ``pending`` (which had no such column) become the migrating centre's.
    Each table is rebuilt (SQLite cannot change a primary key in place): made anew under
    another name, filled, the old one dropped, the new one renamed."""
    for table in (maps, _v2_devices, pending):
        old = Table(table.name, MetaData(), autoload_with=conn)
        staging = table.to_metadata(MetaData(), name=f"{table.name}_v2")
        staging.create(conn)
        # seq of pending is the table's own counter: rows go in in its order and get new ones
        copied = [c.name for c in staging.columns if c.name in old.c and c.name != "seq"]
        if table is maps:
            copied.append("seq")
        columns: list[Any] = [old.c[name] for name in copied]
        if "deployment" not in old.c:
            columns.append(literal(deployment).label("deployment"))
            copied.append("deployment")
        source = select(*columns)
        if table is pending:
            source = source.order_by(old.c.seq)
        conn.execute(staging.insert().from_select(copied, source))
        old.drop(conn)
        conn.execute(text(f"ALTER TABLE {staging.name} RENAME TO {table.name}"))


def _v3(conn: Connection, deployment: str) -> None:
    """What the monitor shows, kept for ``epic api``: devices' snapshots and centres' health."""
    conn.execute(text("ALTER TABLE devices ADD COLUMN snapshot TEXT"))
    centres.create(conn)


# Version n is reached by running step n; a new version appends its step, never edits one.
MIGRATIONS: list[Callable[[Connection, str], None]] = [_v1, _v2, _v3]
NOTIFY_CHANNEL = "epic_events"
SCHEMA_VERSION = len(MIGRATIONS)

_URL_SCHEMES = ("postgresql", "postgres")
_MIGRATION_LOCK = 0x45504943  # "EPIC": the advisory lock that migrations take


def is_url(location: str | Path) -> bool:
    """Whether ``location`` names a database server (``postgresql://...``) rather than a file."""
    return str(location).split(":", 1)[0].split("+", 1)[0] in _URL_SCHEMES and "://" in str(
        location
    )


class Database:
    """One database: ``location`` is a SQLite file (``:memory:`` for none) or a PostgreSQL
    URL. ``shown`` is the location fit for a log line (no password)."""

    def __init__(self, location: str | Path, busy_timeout_s: float = 2.0) -> None:
        self.location = str(location)
        self.server = is_url(location)
        if self.server:
            url = make_url(self.location)
            self.shown = url.render_as_string(hide_password=True)
            if url.drivername in _URL_SCHEMES:
                url = url.set(drivername="postgresql+psycopg")
            self.engine: Engine = create_engine(url, pool_pre_ping=True)
        else:
            self.shown = self.location
            self.engine = _sqlite_engine(self.location, busy_timeout_s)

    @property
    def in_memory(self) -> bool:
        return self.location == ":memory:"

    def open(self, deployment: str) -> Connection:
        """A connection to a database migrated to ``SCHEMA_VERSION`` (rows a migration must
        give a deployment become ``deployment``'s). Raises ``DatabaseError`` (or ``OSError``
        for a SQLite folder that cannot be made)."""
        if not self.server and not self.in_memory:
            Path(self.location).parent.mkdir(parents=True, exist_ok=True)
        conn = self.engine.connect()
        try:
            migrate(conn, deployment)
        except BaseException:
            conn.close()
            raise
        return conn

    def dispose(self) -> None:
        self.engine.dispose()

    def notify(self, conn: Connection, deployment: str) -> None:
        """Tell API processes that ``deployment`` changed, when the transaction commits
        (PostgreSQL; SQLite readers poll)."""
        if self.server:
            conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, deployment)))

    def insert(self, table: Table) -> Insert:
        """``INSERT`` in this engine's dialect (the one that knows ``ON CONFLICT``)."""
        if self.server:
            return postgresql.insert(table)
        return sqlite.insert(table)

    def replace(self, table: Table, keys: list[str]) -> Insert:
        """Insert, or overwrite the row with the same ``keys``."""
        stmt: Any = self.insert(table)
        others = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=others)

    def insert_new(self, table: Table, keys: list[str]) -> Insert:
        """Insert, unless a row with the same ``keys`` is there (the first copy wins)."""
        stmt: Any = self.insert(table)
        return stmt.on_conflict_do_nothing(index_elements=keys)


def _sqlite_engine(path: str, busy_timeout_s: float) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN, below, not pysqlite's
        if path != ":memory:":
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: durable to the last commit across a killed process
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("writing") else "BEGIN")

    return engine


@contextmanager
def writing(conn: Connection) -> Iterator[Connection]:
    """One writing transaction: committed on leaving, rolled back on an error. SQLite takes
    its write lock at the start (``BEGIN IMMEDIATE``)."""
    if conn.in_transaction():
        conn.rollback()  # a read's transaction left open: start clean
    conn.info["writing"] = True
    try:
        with conn.begin():
            yield conn
    finally:
        conn.info["writing"] = False


@contextmanager
def reading(conn: Connection) -> Iterator[Connection]:
    """One read-only transaction (ended at once, so it holds no snapshot or lock)."""
    if conn.in_transaction():
        conn.rollback()
    with conn.begin():
        yield conn


def version_of(conn: Connection) -> int:
    """The schema version a database holds (0: none, or a file from before versions)."""
    if not conn.dialect.has_table(conn, "schema_version"):
        return 0
    return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)


def migrate(conn: Connection, deployment: str) -> int:
    """Run the migrations above the database's version, in one transaction; the version now.
    A database newer than this program is refused (its tables may not mean what we think)."""
    with writing(conn):
        if conn.dialect.name == "postgresql":  # centres starting together migrate one by one
            conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        if not conn.dialect.has_table(conn, "schema_version"):
            schema_version.create(conn)
        found = version_of(conn)
        if found > SCHEMA_VERSION:
            raise NewerSchema(found)
        for step in MIGRATIONS[found:]:
            step(conn, deployment)
        if found < SCHEMA_VERSION:
            conn.execute(schema_version.delete())
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
    return SCHEMA_VERSION


class NewerSchema(SQLAlchemyError):
    """The database was migrated by a newer EPIC."""

    def __init__(self, found: int) -> None:
        super().__init__(
            f"its schema is version {found}, newer than this EPIC's {SCHEMA_VERSION}: upgrade EPIC"
        )
