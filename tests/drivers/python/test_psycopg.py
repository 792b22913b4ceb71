#!/usr/bin/env python3
"""Driver test: psycopg 3 used the way an application uses it, against reef or PostgreSQL.

    REEF_URL=postgresql://reef@127.0.0.1:5433/reef python3 test_psycopg.py

Every check runs even when an earlier one fails; each prints "ok" or "FAIL" with the reason,
and the script ends with "N passed, N failed" and exits 1 if any check failed.

Every check passes against PostgreSQL 15 and against reef. Where reef has a documented limit
(tests/drivers/README.md, "Known limits"), the check finds out which server it talks to and, on
reef, asserts the clear error reef gives instead of PostgreSQL's behaviour.

REEF_TLS=0 leaves out the TLS check, for a server without TLS.
"""

import datetime as dt
import math
import os
import struct
import sys
import threading
import time
from decimal import Decimal

import psycopg
from psycopg import errors, sql

from checks import CheckFailed, Checks, expect

URL = os.environ.get("REEF_URL")
if not URL:
    sys.exit("test_psycopg.py: set REEF_URL, e.g. postgresql://reef@127.0.0.1:5433/reef")

# Tables of this test start with this prefix, so the three driver tests never collide.
PREFIX = "drv_py_"
# The role of the SCRAM check (the same in the three tests, which run one after another).
SCRAM_USER = "drv_scram"
TLS = os.environ.get("REEF_TLS", "1") != "0"

checks = Checks(
    describe=lambda e: f"{type(e).__name__} (SQLSTATE {e.sqlstate}): {e}"
    if isinstance(e, psycopg.Error)
    else None,
    after=lambda: heal(),
)
check = checks.check


def connect():
    # Autocommit, as most web applications run: each statement commits on its own and
    # transactions are explicit (conn.transaction()).
    return psycopg.connect(URL, autocommit=True)


conn = None
# Whether the server is reef (its version() says "reefdb"), set by the first check.
IS_REEF = False


def heal():
    """Makes the shared connection usable after a check: ends a transaction a failed check left
    open, and reconnects if the connection broke."""
    global conn
    try:
        if conn is None or conn.closed or conn.broken:
            conn = connect()
        elif conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
    except psycopg.Error as e:
        print(f"cannot reconnect: {e}", flush=True)


def recreate(table, columns):
    """Drops the table if present and creates it with the given column list."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), sql.SQL(columns)))


def fetch_one(query, params=None, binary=False):
    with conn.cursor(binary=binary) as cur:
        cur.execute(query, params)
        return cur.fetchone()


def expect_sqlstate(sqlstate, query, params=None):
    """Runs a statement that must fail with the given SQLSTATE, then checks the connection."""
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
    except psycopg.Error as e:
        expect(e.sqlstate == sqlstate, f"{query!r}: SQLSTATE {e.sqlstate} ({e}), expected {sqlstate}")
    else:
        raise CheckFailed(f"{query!r} succeeded; expected SQLSTATE {sqlstate}")
    expect(fetch_one("SELECT 1") == (1,), "the connection does not answer after the error")


# --- Connecting ---------------------------------------------------------------------------


@check("connect and SELECT 1")
def _():
    global IS_REEF
    heal()
    expect(fetch_one("SELECT 1") == (1,), "SELECT 1 did not return 1")
    IS_REEF = "reefdb" in fetch_one("SELECT version()")[0]
    expect(conn.info.server_version >= 100000, f"server_version {conn.info.server_version}")
    expect(conn.info.parameter_status("client_encoding") == "UTF8", "client_encoding is not UTF8")


if conn is None or conn.closed:
    sys.exit("test_psycopg.py: cannot connect; stopping")
print(f"     server: {'reef' if IS_REEF else 'PostgreSQL'} {conn.info.parameter_status('server_version')}", flush=True)


# --- Parameterised statements in text and binary --------------------------------------------


ITEMS = PREFIX + "items"


@check("create the items table (dropping it first)")
def _():
    recreate(ITEMS, "id integer PRIMARY KEY, name text NOT NULL, qty integer, price numeric(10,2)")


for binary in (False, True):
    fmt = "binary" if binary else "text"
    # %b sends the parameter in binary, %t in text; a binary cursor asks for binary results.
    ph = "%b" if binary else "%t"

    @check(f"parameterised INSERT and SELECT ({fmt} parameters and results)")
    def _(binary=binary, fmt=fmt, ph=ph):
        base = 100 if binary else 0
        with conn.cursor(binary=binary) as cur:
            for i in range(1, 6):
                cur.execute(
                    f"INSERT INTO {ITEMS} (id, name, qty, price) VALUES ({ph}, {ph}, {ph}, {ph})",
                    (base + i, f"item {i} ✓", i * 10, Decimal(f"{i}.25")),
                )
                expect(cur.rowcount == 1, f"INSERT rowcount {cur.rowcount}")
            cur.execute(
                f"SELECT id, name, qty, price FROM {ITEMS} WHERE id > {ph} AND id <= {ph} ORDER BY id",
                (base, base + 5),
            )
            rows = cur.fetchall()
            expect(cur.pgresult.fformat(0) == int(binary), f"result column came back in format {cur.pgresult.fformat(0)}")
        want = [(base + i, f"item {i} ✓", i * 10, Decimal(f"{i}.25")) for i in range(1, 6)]
        expect(rows == want, f"got {rows}, want {want}")


@check("UPDATE and DELETE with parameters report their row counts; RETURNING returns rows")
def _():
    with conn.cursor() as cur:
        cur.execute(f"UPDATE {ITEMS} SET qty = qty + %s WHERE id <= %s", (1, 5))
        expect(cur.rowcount == 5, f"UPDATE rowcount {cur.rowcount}, want 5")
        cur.execute(f"DELETE FROM {ITEMS} WHERE id = %s RETURNING id, qty", (5,))
        expect(cur.fetchall() == [(5, 51)], "DELETE ... RETURNING did not return (5, 51)")
        cur.execute(f"SELECT count(*) FROM {ITEMS} WHERE id <= %s", (5,))
        expect(cur.fetchone() == (4,), "the deleted row is still there")


# --- A prepared statement reused many times --------------------------------------------------


@check("a server-prepared INSERT and SELECT each executed 200 times")
def _():
    recreate(PREFIX + "prepared", "id integer PRIMARY KEY, v text")
    with conn.cursor() as cur:
        for i in range(200):
            cur.execute(f"INSERT INTO {PREFIX}prepared (id, v) VALUES (%s, %s)", (i, f"v{i}"), prepare=True)
        for i in range(200):
            cur.execute(f"SELECT v FROM {PREFIX}prepared WHERE id = %s", (i,), prepare=True)
            got = cur.fetchone()
            expect(got == (f"v{i}",), f"execution {i} returned {got}")
        cur.execute(f"SELECT count(*), sum(id) FROM {PREFIX}prepared")
        expect(cur.fetchone() == (200, 199 * 200 // 2), "count/sum after 200 prepared inserts")


@check("executemany (pipelined) inserts 100 rows")
def _():
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {PREFIX}prepared (id, v) VALUES (%s, %s)", [(i, "m") for i in range(1000, 1100)])
        cur.execute(f"SELECT count(*) FROM {PREFIX}prepared WHERE v = 'm'")
        expect(cur.fetchone() == (100,), "executemany did not insert 100 rows")


# --- Transactions -------------------------------------------------------------------------


@check("a rolled-back transaction leaves no rows; a committed one is seen by another connection")
def _():
    table = PREFIX + "txn"
    recreate(table, "id integer PRIMARY KEY, v text")
    try:
        with conn.transaction():
            conn.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b')")
            n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            expect(n == 2, f"inside the transaction count is {n}, want 2")
            raise psycopg.Rollback()
    finally:
        expect(conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE, "still in a transaction")
    expect(fetch_one(f"SELECT count(*) FROM {table}") == (0,), "rolled-back rows are still there")
    with conn.transaction():
        conn.execute(f"INSERT INTO {table} VALUES (3, 'c')")
    with connect() as other:
        got = other.execute(f"SELECT id, v FROM {table}").fetchall()
    expect(got == [(3, "c")], f"another connection sees {got}, want [(3, 'c')]")


@check("an error inside a transaction aborts it (25P02) until ROLLBACK; the rows are gone")
def _():
    table = PREFIX + "txn"
    conn.execute("BEGIN")
    conn.execute(f"INSERT INTO {table} VALUES (10, 'x')")
    try:
        conn.execute(f"INSERT INTO {table} VALUES (3, 'duplicate')")
        raise CheckFailed("the duplicate INSERT succeeded")
    except errors.UniqueViolation:
        pass
    try:
        conn.execute("SELECT 1")
        raise CheckFailed("a statement after the error succeeded inside the failed transaction")
    except errors.InFailedSqlTransaction:
        pass
    conn.execute("ROLLBACK")
    expect(fetch_one(f"SELECT count(*) FROM {table} WHERE id = 10") == (0,), "row 10 survived the rollback")


# --- Errors and their SQLSTATEs -------------------------------------------------------------


@check("errors carry their SQLSTATE and the connection keeps working")
def _():
    expect_sqlstate("23505", f"INSERT INTO {PREFIX}txn VALUES (3, 'again')")
    expect_sqlstate("42P01", f"SELECT * FROM {PREFIX}no_such_table")
    expect_sqlstate("22012", "SELECT 1 / 0")
    expect_sqlstate("42601", "SELEC 1")
    expect_sqlstate("22P02", "SELECT %s::integer", ("not a number",))
    expect_sqlstate("23502", f"INSERT INTO {ITEMS} (id, name) VALUES (%s, %s)", (50, None))
    expect_sqlstate("22003", "SELECT 32767::smallint + 1::smallint")
    expect_sqlstate("42703", f"SELECT no_such_column FROM {ITEMS}")


@check("a unique violation names its schema, table and constraint (as ORMs read them)")
def _():
    try:
        conn.execute(f"INSERT INTO {PREFIX}txn VALUES (3, 'again')")
        raise CheckFailed("the duplicate INSERT succeeded")
    except errors.UniqueViolation as e:
        diag = e.diag
    got = (diag.schema_name, diag.table_name, diag.constraint_name)
    want = ("public", f"{PREFIX}txn", f"{PREFIX}txn_pkey")
    expect(got == want, f"schema, table and constraint names are {got}, want {want}")
    expect(diag.message_primary and "duplicate key" in diag.message_primary, f"message is {diag.message_primary!r}")


# --- NULLs ----------------------------------------------------------------------------------

ALL_TYPES = [
    "boolean", "smallint", "integer", "bigint", "real", "double precision", "numeric", "numeric(10,2)",
    "text", "varchar(10)", "char(5)", "bytea", "date", "timestamp", "timestamptz", "interval",
]


@check("NULL in a column of every type reads back as None (text and binary)")
def _():
    table = PREFIX + "nulls"
    recreate(table, "id integer PRIMARY KEY, " + ", ".join(f"c{i} {t}" for i, t in enumerate(ALL_TYPES)))
    cols = ", ".join(f"c{i}" for i in range(len(ALL_TYPES)))
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (id) VALUES (1)")
        marks = ", ".join(["%s"] * len(ALL_TYPES))
        cur.execute(f"INSERT INTO {table} (id, {cols}) VALUES (2, {marks})", [None] * len(ALL_TYPES))
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute(f"SELECT {cols} FROM {table} ORDER BY id")
            rows = cur.fetchall()
        expect(rows == [(None,) * len(ALL_TYPES)] * 2, f"binary={binary}: got {rows}")
    got = fetch_one("SELECT %s::integer IS NULL, %s::text IS NULL, NULL::integer", (None, None))
    expect(got == (True, True, None), f"NULL parameters: got {got}")


# --- Every type round-trips exactly ----------------------------------------------------------


def f32(x):
    """The value of x rounded to single precision, as a real column stores it."""
    return struct.unpack("f", struct.pack("f", x))[0]


def same_float(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def same_decimal(a, b):
    # Compare the written form too, so that the scale survives (1.00 is not 1).
    return isinstance(a, Decimal) and format(a, "f") == format(b, "f")


def short(v):
    r = repr(v)
    return r if len(r) <= 80 else r[:60] + f"... ({len(r)} characters)"


UTC = dt.timezone.utc
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def exact(a, b):
    return a == b and type(a) is type(b)


# One entry per check: (label, column type, values, how to compare). A value is either sent
# and expected back unchanged, or a pair (value sent, value expected back). A string sent to a
# column of a non-string type stands for a value Python cannot hold and is cast by the server.
ROUND_TRIPS = [
    ("boolean", "boolean", [True, False], exact),
    ("smallint", "smallint", [-32768, 0, 32767], exact),
    ("integer", "integer", [-2147483648, 0, 2147483647], exact),
    ("bigint", "bigint", [-9223372036854775808, 0, 9223372036854775807], exact),
    ("real", "real",
     [(x, f32(x)) for x in (1.5, -0.0, 0.1, 3.4028234663852886e38, 1.401298464324817e-45, math.inf, -math.inf, math.nan)],
     lambda got, want: same_float(f32(got), want)),
    ("double precision", "double precision",
     [0.1, -0.0, 1.7976931348623157e308, 5e-324, 2.2250738585072014e-308, math.inf, -math.inf, math.nan],
     same_float),
    ("numeric", "numeric",
     [Decimal(s) for s in (
         "0", "1.00", "-1.5", "0.000001", "1000000",
         "12345678901234567890.12345678",    # 28 significant digits
         "79228162514264337593543950335",    # 29 digits
         "-0.0000000000000000000000000001",  # scale 28
     )],
     same_decimal),
    ("numeric(10,2)", "numeric(10,2)",
     [(Decimal("1.5"), Decimal("1.50")), (Decimal("-12345678.905"), Decimal("-12345678.91")), Decimal("99999999.99")],
     same_decimal),
    ("text", "text",
     ["", "plain ascii", "héllo wörld — ünïcödé 日本語 🦀 \U0001F600", "quotes ' \" back\\slash\nnewline\ttab", "x" * 100_000],
     exact),
    ("varchar(10)", "varchar(10)", ["ünïcödé日本🦀", ""], exact),
    ("char(5)", "char(5)", [("ab", "ab   "), ("ü日🦀xy", "ü日🦀xy")], exact),
    ("bytea", "bytea", [b"", b"\x00", bytes(range(256)), bytes((i * 7919) % 256 for i in range(200_000))], exact),
    ("date", "date",
     [dt.date(2024, 2, 29), dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(1970, 1, 1), dt.date(1999, 12, 31), dt.date(2000, 1, 1)],
     exact),
    ("timestamp", "timestamp",
     [dt.datetime(2024, 2, 29, 12, 34, 56, 123456), dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
      dt.datetime(1969, 12, 31, 23, 59, 59, 999999), dt.datetime(2000, 1, 1), dt.datetime(1999, 12, 31, 23, 59, 59, 999999)],
     exact),
    # Values within the column's precision. (PostgreSQL rounds finer ones to it, reef keeps
    # them: a known limit.)
    ("timestamp(3)", "timestamp(3)",
     [dt.datetime(2024, 2, 29, 12, 34, 56, 123000), dt.datetime(1999, 12, 31, 23, 59, 59, 999000), dt.datetime(2000, 1, 1)],
     exact),
    # Compared as instants: the server answers in its session time zone.
    ("timestamptz", "timestamptz",
     [dt.datetime(2024, 2, 29, 12, 34, 56, 123456, tzinfo=IST), dt.datetime(1, 1, 1, tzinfo=UTC),
      dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)],
     lambda got, want: got.tzinfo is not None and got == want),
    ("interval", "interval",
     [dt.timedelta(0), dt.timedelta(days=3, hours=4, minutes=5, seconds=6, microseconds=789000),
      dt.timedelta(days=-1), dt.timedelta(microseconds=1), dt.timedelta(days=-3, seconds=1),
      dt.timedelta(days=100000, hours=23, microseconds=999999),
      # Python has no months; psycopg reads a month as 30 days and a year as 365.
      ("1 year 2 mons 3 days 04:05:06.789", dt.timedelta(days=428, hours=4, minutes=5, seconds=6, microseconds=789000))],
     exact),
]


def round_trip(n, column_type, values, same, binary):
    """Inserts each value with a parameter and reads it back, all in text or all in binary."""
    table = f"{PREFIX}t_{n}"
    if not binary:
        recreate(table, f"id integer PRIMARY KEY, v {column_type}")
    # %b sends a parameter in binary, %t in text; a binary cursor asks for binary results.
    base, ph = (1000, "%b") if binary else (0, "%t")
    is_string = column_type.startswith(("text", "varchar", "char"))
    problems = []
    for i, value in enumerate(values):
        sent, want = value if isinstance(value, tuple) else (value, value)
        mark = f"{ph}::{column_type}" if isinstance(sent, str) and not is_string else ph
        try:
            with conn.cursor(binary=binary) as cur:
                cur.execute(f"INSERT INTO {table} (id, v) VALUES (%s, {mark})", (base + i, sent))
                cur.execute(f"SELECT v FROM {table} WHERE id = %s", (base + i,))
                got = cur.fetchone()[0]
                fmt_back = cur.pgresult.fformat(0)
            if fmt_back != int(binary):
                problems.append(f"{short(sent)}: result came back in format {fmt_back}")
            elif not same(got, want):
                problems.append(f"{short(sent)}: got {short(got)}, want {short(want)}")
        except psycopg.Error as e:
            problems.append(f"{short(sent)}: {type(e).__name__} {e.sqlstate}: {str(e).splitlines()[0]}")
    expect(not problems, "; ".join(problems))


for n, (label, column_type, values, same) in enumerate(ROUND_TRIPS):
    for binary in (False, True):
        fmt = "binary" if binary else "text"
        check(f"{label} round-trips exactly ({fmt} parameters and results)")(
            lambda n=n, t=column_type, v=values, s=same, b=binary: round_trip(n, t, v, s, b)
        )

INTERVAL_TABLE = f"{PREFIX}t_{[r[0] for r in ROUND_TRIPS].index('interval')}"


def refused_on_reef(table, column_type, values, same, binary):
    """Values beyond reef's limits: round-trip exactly on PostgreSQL; on reef, each INSERT must
    fail with the SQLSTATE given beside the value, and store nothing."""
    if not IS_REEF:
        round_trip(table, column_type, [v for v, _ in values], same, binary)
        return
    if not binary:
        recreate(f"{PREFIX}t_{table}", f"id integer PRIMARY KEY, v {column_type}")
    ph = "%b" if binary else "%t"
    problems = []
    for i, (value, sqlstate) in enumerate(values):
        try:
            with conn.cursor(binary=binary) as cur:
                cur.execute(f"INSERT INTO {PREFIX}t_{table} (id, v) VALUES (%s, {ph})", (i, value))
            problems.append(f"{short(value)} was accepted; reef's known limit says it is refused with {sqlstate}")
        except psycopg.Error as e:
            if e.sqlstate != sqlstate:
                problems.append(f"{short(value)}: SQLSTATE {e.sqlstate} ({str(e).splitlines()[0]}), want {sqlstate}")
    expect(not problems, "; ".join(problems))
    expect(fetch_one(f"SELECT count(*) FROM {PREFIX}t_{table}") == (0,), "a refused value was stored")


# PostgreSQL keeps up to 131072 digits before the point and 16383 after, and NaN and +-Infinity;
# reef keeps 28-29 significant digits and scale 28 (the range checked above), and refuses the
# rest with 22003 (out of range) or 0A000 (NaN and infinities).
NUMERIC_BEYOND = [
    (Decimal("123456789012345678901234567890123456789012345678901234567890.123456789012345678901234567890"), "22003"),
    (Decimal("0.0000000000000000000000000000000000000001"), "22003"),
    (Decimal("NaN"), "0A000"),
    (Decimal("Infinity"), "0A000"),
    (Decimal("-Infinity"), "0A000"),
]
for binary in (False, True):
    fmt = "binary" if binary else "text"
    check(f"numeric beyond 29 digits, NaN and +-Infinity round-trip exactly (reef: refused with 22003/0A000, a known limit) ({fmt})")(
        lambda b=binary: refused_on_reef("numeric_beyond", "numeric", NUMERIC_BEYOND, same_decimal, b)
    )


@check("interval with years and months reads back in PostgreSQL's text form")
def _():
    # The text round trip of interval above stored '1 year 2 mons 3 days 04:05:06.789' as row 6.
    got = fetch_one(f"SELECT v::text FROM {INTERVAL_TABLE} WHERE id = 6")
    expect(got == ("1 year 2 mons 3 days 04:05:06.789",), f"got {got}")


def extremes(values):
    """Date and timestamp values Python's date and datetime cannot hold, sent and read back as
    text; each is (type, value, SQLSTATE reef refuses it with, or None where reef keeps it)."""
    table = PREFIX + "extremes"
    recreate(table, "id integer PRIMARY KEY, v_date date, v_timestamp timestamp, v_timestamptz timestamptz")
    problems = []
    for i, (typ, value, reef_sqlstate) in enumerate(values):
        want_error = reef_sqlstate if IS_REEF else None
        try:
            with conn.cursor() as cur:
                cur.execute(f"INSERT INTO {table} (id, v_{typ}) VALUES (%s, %s::{typ})", (i, value))
                got = cur.execute(f"SELECT v_{typ}::text FROM {table} WHERE id = %s", (i,)).fetchone()[0]
            if want_error:
                problems.append(f"{typ} {value!r} was accepted; reef's known limit says it is refused with {want_error}")
            elif got != value:
                problems.append(f"{typ} {value!r}: got {got!r}")
        except psycopg.Error as e:
            if e.sqlstate != want_error:
                problems.append(f"{typ} {value!r}: {e.sqlstate}: {str(e).splitlines()[0]}" + (f", want {want_error}" if want_error else ""))
    expect(not problems, "; ".join(problems))


@check("dates and timestamps in 4713 BC and at 23:59:59.999999 round-trip as text")
def _():
    extremes([
        ("date", "4713-01-01 BC", None), ("timestamp", "4713-01-01 00:00:00 BC", None),
        ("timestamp", "0001-12-31 23:59:59.999999 BC", None), ("timestamptz", "4713-01-01 00:00:00+00 BC", None),
    ])


@check("infinite dates and timestamps and years after 262142 round-trip as text (reef: refused with 0A000/22008, a known limit)")
def _():
    extremes([
        ("date", "infinity", "0A000"), ("date", "-infinity", "0A000"), ("date", "5874897-12-31", "22008"),
        ("timestamp", "infinity", "0A000"), ("timestamp", "-infinity", "0A000"),
        ("timestamp", "294276-12-31 23:59:59.999999", "22008"),
        ("timestamptz", "infinity", "0A000"), ("timestamptz", "-infinity", "0A000"),
    ])


# --- Sessions -------------------------------------------------------------------------------


@check("several statements in one simple query return one result each")
def _():
    with conn.cursor() as cur:
        cur.execute("SELECT 1; SELECT 'two'")
        first = cur.fetchall()
        expect(cur.nextset(), "no second result set")
        expect((first, cur.fetchall()) == ([(1,)], [("two",)]), "wrong results")


@check("an explicit pipeline runs several statements before reading their results")
def _():
    with conn.pipeline():
        a = conn.execute("SELECT %s::integer + 1", (41,))
        b = conn.execute("SELECT %s::text || %s", ("x", "y"))
        c = conn.execute("SELECT %s::integer IS NULL", (None,))
    got = (a.fetchone(), b.fetchone(), c.fetchone())
    expect(got == ((42,), ("xy",), (True,)), f"pipelined results are {got}")


@check("SET TIME ZONE 'UTC' is accepted (what frameworks such as Django send)")
def _():
    conn.execute("SET TIME ZONE 'UTC'")
    expect(conn.info.parameter_status("TimeZone") in ("UTC", "Etc/UTC"), "TimeZone is not reported as UTC")


@check("settings given when connecting (application_name, options=-c statement_timeout=1500) are the session's")
def _():
    with psycopg.connect(URL, autocommit=True, application_name="drv_py", options="-c statement_timeout=1500") as other:
        got = other.execute("SHOW statement_timeout").fetchone()[0]
        expect(got == "1500ms", f"SHOW statement_timeout says {got!r}")
        got = (other.execute("SHOW application_name").fetchone()[0], other.info.parameter_status("application_name"))
        expect(got == ("drv_py", "drv_py"), f"application_name is {got} (SHOW, as reported)")


@check("an unknown setting given when connecting refuses the connection")
def _():
    # libpq gives no SQLSTATE for a refused connection, only the message (42704 is checked by
    # the node-postgres test).
    try:
        psycopg.connect(URL, options="-c no_such_setting=1").close()
        raise CheckFailed("the connection was accepted")
    except psycopg.OperationalError as e:
        expect('unrecognized configuration parameter "no_such_setting"' in str(e), f"refused with {e}")


@check("a session time zone other than UTC (options=-c TimeZone=Asia/Kolkata) is honoured (reef: the connection is refused, a known limit)")
def _():
    try:
        other = psycopg.connect(URL, autocommit=True, options="-c TimeZone=Asia/Kolkata")
    except psycopg.OperationalError as e:
        # reef runs in UTC only and refuses (0A000, checked by the node-postgres test) rather
        # than silently keep UTC.
        expect(IS_REEF, f"the connection was refused: {e}")
        expect('time zone "Asia/Kolkata" is not supported' in str(e), f"refused with {e}")
        return
    with other:
        expect(not IS_REEF, "reef accepted TimeZone=Asia/Kolkata; its known limit says it refuses it")
        tz = other.execute("SHOW TimeZone").fetchone()[0]
        expect(tz == "Asia/Kolkata", f"SHOW TimeZone says {tz!r}")
        got = other.execute("SELECT '2024-07-01 12:00:00+00'::timestamptz::text").fetchone()[0]
        expect(got == "2024-07-01 17:30:00+05:30", f"timestamptz reads {got!r}")
        got = other.execute("SELECT '2024-07-01 12:00:00'::timestamptz = '2024-07-01 06:30:00+00'").fetchone()[0]
        expect(got is True, "a timestamptz literal without an offset was not read in the session time zone")


@check("SET TIME ZONE 'Asia/Kolkata' changes how timestamptz values are returned (reef: 0A000, a known limit)")
def _():
    with psycopg.connect(URL, autocommit=True) as other:
        try:
            other.execute("SET TIME ZONE 'Asia/Kolkata'")
            expect(not IS_REEF, "reef accepted SET TIME ZONE 'Asia/Kolkata'; its known limit says it refuses it")
        except errors.FeatureNotSupported:
            expect(IS_REEF, "SET TIME ZONE 'Asia/Kolkata' failed with 0A000")
            tz = other.execute("SHOW TimeZone").fetchone()[0]
            expect(tz == "UTC", f"after the refused SET, SHOW TimeZone says {tz!r}")
            return
        got = other.execute("SELECT %s::timestamptz", (dt.datetime(2024, 7, 1, 12, tzinfo=UTC),)).fetchone()[0]
        expect(got.utcoffset() == dt.timedelta(hours=5, minutes=30), f"after SET TIME ZONE got {got!r}")


# --- COPY -----------------------------------------------------------------------------------

COPY_TABLE = PREFIX + "copy"
COPY_COLUMNS = ["integer", "text", "numeric(10,2)", "date", "timestamp", "timestamptz", "bytea", "boolean",
                "double precision", "interval"]
COPY_ROWS = [
    (1, "tab\there\nnewline back\\slash ünïcödé 🦀", Decimal("1.50"), dt.date(2024, 2, 29),
     dt.datetime(2024, 2, 29, 12, 34, 56, 123456), dt.datetime(2024, 2, 29, 12, 34, 56, tzinfo=UTC), b"\x00\x01\xff\\",
     True, 0.1, dt.timedelta(days=1, seconds=5)),
    (2, None, None, None, None, None, None, None, None, None),
    (3, "", Decimal("-0.01"), dt.date(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
     dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), b"", False, math.inf, dt.timedelta(0)),
    # The two characters backslash and N are a string, not a NULL.
    (4, "\\N", Decimal("0"), None, None, None, b"\\N", None, -0.0, None),
]
# What COPY ... TO STDOUT writes for those rows, byte for byte (text format, UTC session).
COPY_TEXT = (
    "1\ttab\\there\\nnewline back\\\\slash ünïcödé 🦀\t1.50\t2024-02-29\t2024-02-29 12:34:56.123456\t"
    "2024-02-29 12:34:56+00\t\\\\x0001ff5c\tt\t0.1\t1 day 00:00:05\n"
    "2\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"
    "3\t\t-0.01\t0001-01-01\t9999-12-31 23:59:59.999999\t1969-12-31 23:59:59.999999+00\t\\\\x\tf\tInfinity\t00:00:00\n"
    "4\t\\\\N\t0.00\t\\N\t\\N\t\\N\t\\\\x5c4e\t\\N\t-0\t\\N\n"
).encode()


@check("COPY FROM STDIN (cursor.copy, write_row) loads text rows with NULLs and escapes; COPY TO STDOUT returns them")
def _():
    recreate(COPY_TABLE, ", ".join(f"c{i} {t}" + (" PRIMARY KEY" if i == 0 else "") for i, t in enumerate(COPY_COLUMNS)))
    conn.execute("SET TIME ZONE 'UTC'")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {COPY_TABLE} FROM STDIN") as copy:
            for row in COPY_ROWS:
                copy.write_row(row)
        expect(cur.rowcount == len(COPY_ROWS), f"COPY FROM reported {cur.rowcount} rows")
        # Typed rows back.
        with cur.copy(f"COPY {COPY_TABLE} TO STDOUT") as copy:
            copy.set_types([t.split("(")[0] for t in COPY_COLUMNS])
            rows = list(copy.rows())
        expect(rows == COPY_ROWS, f"COPY TO returned {rows}")
        expect(cur.rowcount == len(COPY_ROWS), f"COPY TO reported {cur.rowcount} rows")
        # The exact text.
        data = b""
        with cur.copy(f"COPY (SELECT * FROM {COPY_TABLE} ORDER BY c0) TO STDOUT") as copy:
            for block in copy:
                data += bytes(block)
        expect(data == COPY_TEXT, f"COPY TO wrote {data!r}, want {COPY_TEXT!r}")
        cur.execute(f"SELECT * FROM {COPY_TABLE} ORDER BY c0")
        expect(cur.fetchall() == COPY_ROWS, "a SELECT after COPY FROM does not return the rows")


@check("COPY FROM STDIN takes raw text and CSV data (column lists, \\N, quoting); a bad row fails the whole COPY (22P02)")
def _():
    with conn.cursor() as cur:
        with cur.copy(f"COPY {COPY_TABLE} (c0, c1) FROM STDIN") as copy:
            copy.write(b"10\tfrom raw\n11\t\\N\n12\ta\\tb\\\\c\n")
        expect(cur.rowcount == 3, f"COPY FROM reported {cur.rowcount} rows")
        with cur.copy(f"COPY {COPY_TABLE} (c0, c1, c7) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(b'20,"a,b",true\n21,,\n22,"",f\n23,"say ""hi""\nthere",t\n')
        expect(cur.rowcount == 4, f"COPY FROM (csv) reported {cur.rowcount} rows")
        cur.execute(f"SELECT c0, c1, c7 FROM {COPY_TABLE} WHERE c0 >= 10 ORDER BY c0")
        got = cur.fetchall()
        want = [(10, "from raw", None), (11, None, None), (12, "a\tb\\c", None),
                (20, "a,b", True), (21, None, None), (22, "", False), (23, 'say "hi"\nthere', True)]
        expect(got == want, f"got {got}")
        try:
            with cur.copy(f"COPY {COPY_TABLE} (c0, c2) FROM STDIN") as copy:
                copy.write(b"30\t1.5\n31\tnot a number\n")
            raise CheckFailed("COPY with a bad row succeeded")
        except errors.InvalidTextRepresentation:
            pass
        expect(fetch_one(f"SELECT count(*) FROM {COPY_TABLE} WHERE c0 >= 30") == (0,), "rows of the failed COPY were stored")


# --- Cancelling -----------------------------------------------------------------------------

CROSS = PREFIX + "cross"
# A count over a three-way cross join of 200 rows (8 million rows) runs for a good part of a
# second on PostgreSQL, long enough to be cancelled or timed out after 50 ms.
SLOW_QUERY = f"SELECT count(*) FROM {CROSS} a, {CROSS} b, {CROSS} c"


@check("a running query is cancelled (conn.cancel_safe(), 57014) and the connection keeps working")
def _():
    recreate(CROSS, "id integer PRIMARY KEY")
    conn.execute(f"INSERT INTO {CROSS} VALUES " + ", ".join(f"({i})" for i in range(200)))
    # PostgreSQL drops a cancel that arrives before the query has reached it, so one is sent
    # every 50 ms until the query ends.
    done = threading.Event()

    def keep_cancelling():
        while not done.wait(0.05):
            conn.cancel_safe()

    canceller = threading.Thread(target=keep_cancelling)
    canceller.start()
    started = time.monotonic()
    try:
        conn.execute(SLOW_QUERY)
        raise CheckFailed(f"the query was not cancelled: it finished after {time.monotonic() - started:.1f}s")
    except errors.QueryCanceled:
        pass
    finally:
        done.set()
        canceller.join()
    expect(fetch_one("SELECT 1") == (1,), "the connection does not answer after the cancel")


@check("SET statement_timeout = 50 stops a longer query (57014)")
def _():
    started = time.monotonic()
    try:
        conn.execute("SET statement_timeout = 50")
        conn.execute(SLOW_QUERY)
        raise CheckFailed(f"the query was not stopped: it finished after {time.monotonic() - started:.1f}s")
    except errors.QueryCanceled:
        pass
    finally:
        conn.execute("SET statement_timeout = 0")


# --- Passwords and TLS ----------------------------------------------------------------------


@check(f"a role with a SCRAM-SHA-256 password ({SCRAM_USER}) connects with it; a wrong password is refused")
def _():
    # The trusted initial role creates it. (A PostgreSQL server needs a pg_hba.conf line making
    # this role give its password: see tests/drivers/README.md.)
    conn.execute(f"DROP USER IF EXISTS {SCRAM_USER}")
    conn.execute(f"CREATE USER {SCRAM_USER} PASSWORD 'pw'")
    # require_auth makes libpq refuse any other authentication than SCRAM-SHA-256.
    with psycopg.connect(URL, user=SCRAM_USER, password="pw", require_auth="scram-sha-256", autocommit=True) as other:
        expect(other.info.pgconn.used_password, "the server did not ask for the password")
        # session_authorization names the role logged in on both servers (reef's current_user
        # does not yet: a known limit).
        got = other.execute("SHOW session_authorization").fetchone()[0]
        expect(got == SCRAM_USER, f"logged in as {got!r}")
        expect(other.execute("SELECT 1").fetchone() == (1,), "SELECT 1 did not return 1")
    # libpq gives no SQLSTATE for a refused connection, only the message of 28P01 (which the
    # node-postgres and pgJDBC tests check).
    try:
        psycopg.connect(URL, user=SCRAM_USER, password="wrong").close()
        raise CheckFailed("the wrong password was accepted")
    except psycopg.OperationalError as e:
        expect(f'password authentication failed for user "{SCRAM_USER}"' in str(e), f"refused with {e}")


if TLS:

    @check("sslmode=require connects over TLS (and sslmode=disable without)")
    def _():
        with psycopg.connect(URL, sslmode="require") as other:
            expect(other.info.pgconn.ssl_in_use, "the connection is not encrypted")
            expect(other.execute("SELECT %s::text", ("over TLS",)).fetchone() == ("over TLS",), "wrong answer over TLS")
        with psycopg.connect(URL, sslmode="disable") as other:
            expect(not other.info.pgconn.ssl_in_use, "sslmode=disable is encrypted")
            expect(other.execute("SELECT 1").fetchone() == (1,), "wrong answer without TLS")

else:
    print("     (TLS not checked: REEF_TLS=0)", flush=True)


# --- Summary --------------------------------------------------------------------------------

checks.finish(
    "psycopg",
    f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__} implementation, libpq {psycopg.pq.version()})",
)
