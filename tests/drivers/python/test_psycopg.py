#!/usr/bin/env python3
"""Driver test: psycopg 3 used the way an application uses it, against reef or PostgreSQL.

    REEF_URL=postgresql://reef@127.0.0.1:5433/reef python3 test_psycopg.py

Every check runs even when an earlier one fails; each prints "ok" or "FAIL" with the reason,
and the script ends with "N passed, N failed" and exits 1 if any check failed.
"""

import datetime as dt
import math
import os
import struct
import sys
import threading
import time
import traceback
from decimal import Decimal

import psycopg
from psycopg import errors, sql

URL = os.environ.get("REEF_URL")
if not URL:
    sys.exit("test_psycopg.py: set REEF_URL, e.g. postgresql://reef@127.0.0.1:5433/reef")

# Tables of this test start with this prefix, so the three driver tests never collide.
PREFIX = "drv_py_"

results = {"passed": 0, "failed": []}


class CheckFailed(Exception):
    """A check's expectation did not hold."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def check(name):
    """Runs the decorated function at once as one named check and records its outcome."""

    def run(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - any exception fails the check, not the run.
            if isinstance(e, CheckFailed):
                detail = str(e)
            elif isinstance(e, psycopg.Error):
                detail = f"{type(e).__name__} (SQLSTATE {e.sqlstate}): {e}"
            else:
                detail = traceback.format_exc(limit=3)
            results["failed"].append(name)
            print(f"FAIL {name}: {detail.strip()}", flush=True)
        else:
            results["passed"] += 1
            print(f"ok   {name}", flush=True)
        finally:
            heal()
        return fn

    return run


def connect():
    # Autocommit, as most web applications run: each statement commits on its own and
    # transactions are explicit (conn.transaction()).
    return psycopg.connect(URL, autocommit=True)


conn = None


def heal():
    """Makes the shared connection usable after a failed check: reconnects if broken."""
    global conn
    if conn is None or conn.closed or conn.broken:
        conn = connect()


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
    heal()
    expect(fetch_one("SELECT 1") == (1,), "SELECT 1 did not return 1")
    expect(conn.info.server_version >= 100000, f"server_version {conn.info.server_version}")
    expect(conn.info.parameter_status("client_encoding") == "UTF8", "client_encoding is not UTF8")


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


@check("a unique violation names its table and constraint (as ORMs read them)")
def _():
    try:
        conn.execute(f"INSERT INTO {PREFIX}txn VALUES (3, 'again')")
        raise CheckFailed("the duplicate INSERT succeeded")
    except errors.UniqueViolation as e:
        diag = e.diag
    got = (diag.schema_name, diag.table_name, diag.constraint_name)
    expect(got == ("public", f"{PREFIX}txn", f"{PREFIX}txn_pkey"), f"schema, table and constraint names are {got}")


# --- NULLs ----------------------------------------------------------------------------------

ALL_TYPES = {
    "boolean": "boolean",
    "smallint": "smallint",
    "integer": "integer",
    "bigint": "bigint",
    "real": "real",
    "double": "double precision",
    "numeric": "numeric",
    "numeric_10_2": "numeric(10,2)",
    "text": "text",
    "varchar": "varchar(10)",
    "char": "char(5)",
    "bytea": "bytea",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "interval": "interval",
}


@check("NULL in a column of every type reads back as None (text and binary)")
def _():
    table = PREFIX + "nulls"
    recreate(table, "id integer PRIMARY KEY, " + ", ".join(f"c_{k} {t}" for k, t in ALL_TYPES.items()))
    cols = ", ".join(f"c_{k}" for k in ALL_TYPES)
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
    # PostgreSQL keeps up to 131072 digits before the point and 16383 after, and NaN and
    # +-Infinity: a check of their own, so that the common range above is checked apart.
    ("numeric beyond 29 digits, NaN and +-Infinity", "numeric",
     [Decimal(s) for s in (
         "123456789012345678901234567890123456789012345678901234567890.123456789012345678901234567890",
         "0.0000000000000000000000000000000000000001",
         "NaN", "Infinity", "-Infinity",
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


@check("interval with years and months reads back in PostgreSQL's text form")
def _():
    got = fetch_one(f"SELECT v::text FROM {INTERVAL_TABLE} WHERE id = 6")
    expect(got == ("1 year 2 mons 3 days 04:05:06.789",), f"got {got}")


@check("date and timestamp extremes PostgreSQL accepts (infinity, 4713 BC, after year 9999) round-trip as text")
def _():
    # Python's date and datetime cannot hold these, so they are sent and read back as text.
    table = PREFIX + "extremes"
    recreate(table, "id integer PRIMARY KEY, v_date date, v_timestamp timestamp, v_timestamptz timestamptz")
    problems = []
    for i, (typ, value) in enumerate([
        ("date", "infinity"), ("date", "-infinity"), ("date", "4713-01-01 BC"), ("date", "5874897-12-31"),
        ("timestamp", "infinity"), ("timestamp", "-infinity"), ("timestamp", "4713-01-01 00:00:00 BC"),
        ("timestamp", "294276-12-31 23:59:59.999999"), ("timestamptz", "infinity"), ("timestamptz", "-infinity"),
    ]):
        try:
            with conn.cursor() as cur:
                cur.execute(f"INSERT INTO {table} (id, v_{typ}) VALUES (%s, %s::{typ})", (i, value))
                got = cur.execute(f"SELECT v_{typ}::text FROM {table} WHERE id = %s", (i,)).fetchone()[0]
            if got != value:
                problems.append(f"{typ} {value!r}: got {got!r}")
        except psycopg.Error as e:
            problems.append(f"{typ} {value!r}: {e.sqlstate}: {str(e).splitlines()[0]}")
    expect(not problems, "; ".join(problems))


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
        b = conn.execute(f"SELECT count(*) FROM {ITEMS}")
        conn.execute("SELECT %s::text", ("x",))
    expect(a.fetchone() == (42,) and b.fetchone() == (9,), "pipelined results are wrong")


@check("SET TIME ZONE 'UTC' is accepted (what frameworks such as Django send)")
def _():
    conn.execute("SET TIME ZONE 'UTC'")
    expect(conn.info.parameter_status("TimeZone") in ("UTC", "Etc/UTC"), "TimeZone is not reported as UTC")


@check("a session time zone other than UTC (options=-c TimeZone=Asia/Kolkata) is honoured")
def _():
    with psycopg.connect(URL, autocommit=True, options="-c TimeZone=Asia/Kolkata") as other:
        tz = other.execute("SHOW TimeZone").fetchone()[0]
        expect(tz == "Asia/Kolkata", f"SHOW TimeZone says {tz!r}")
        got = other.execute("SELECT '2024-07-01 12:00:00+00'::timestamptz::text").fetchone()[0]
        expect(got == "2024-07-01 17:30:00+05:30", f"timestamptz reads {got!r}")
        got = other.execute("SELECT '2024-07-01 12:00:00'::timestamptz = '2024-07-01 06:30:00+00'").fetchone()[0]
        expect(got is True, "a timestamptz literal without an offset was not read in the session time zone")


@check("SET TIME ZONE 'Asia/Kolkata' changes how timestamptz values are returned")
def _():
    with psycopg.connect(URL, autocommit=True) as other:
        other.execute("SET TIME ZONE 'Asia/Kolkata'")
        got = other.execute("SELECT %s::timestamptz", (dt.datetime(2024, 7, 1, 12, tzinfo=UTC),)).fetchone()[0]
        expect(got.utcoffset() == dt.timedelta(hours=5, minutes=30), f"after SET TIME ZONE got {got!r}")


# --- Cancelling -----------------------------------------------------------------------------

CROSS = PREFIX + "cross"
# A count over a three-way cross join of 200 rows (8 million rows) runs for a good part of a
# second on PostgreSQL, long enough to be cancelled or timed out after 50 ms.
SLOW_QUERY = f"SELECT count(*) FROM {CROSS} a, {CROSS} b, {CROSS} c"


@check("a running query is cancelled (conn.cancel_safe(), 57014) and the connection keeps working")
def _():
    recreate(CROSS, "id integer PRIMARY KEY")
    conn.execute(f"INSERT INTO {CROSS} VALUES " + ", ".join(f"({i})" for i in range(200)))
    timer = threading.Timer(0.05, conn.cancel_safe)
    timer.start()
    started = time.monotonic()
    try:
        conn.execute(SLOW_QUERY)
        raise CheckFailed(f"the query was not cancelled: it finished after {time.monotonic() - started:.1f}s")
    except errors.QueryCanceled:
        pass
    finally:
        timer.cancel()
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


# --- Summary --------------------------------------------------------------------------------

failed = results["failed"]
if failed:
    print("failed checks:\n  - " + "\n  - ".join(failed))
print(f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__} implementation, libpq {psycopg.pq.version()})")
print(f"psycopg: {results['passed']} passed, {len(failed)} failed", flush=True)
sys.exit(1 if failed else 0)
