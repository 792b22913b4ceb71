#!/usr/bin/env python3
"""Driver test: SQLAlchemy 2 (over psycopg 3) reflecting and using a schema, against reef or
PostgreSQL.

    REEF_URL=postgresql://reef@127.0.0.1:5433/reef python3 test_sqlalchemy.py

SQLAlchemy learns a database's schema from the PostgreSQL catalog (pg_class, pg_attribute,
pg_index, pg_constraint, ... with format_type, pg_get_constraintdef, unnest, array_agg), so
these checks are what an application's `MetaData().reflect()` or Alembic autogenerate needs.
Every check runs even when an earlier one fails; each prints "ok" or "FAIL" with the reason,
and the script ends with "N passed, N failed" and exits 1 if any check failed.
"""

import os
import sys
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import inspect, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from checks import Checks, expect

URL = os.environ.get("REEF_URL")
if not URL:
    sys.exit("test_sqlalchemy.py: set REEF_URL, e.g. postgresql://reef@127.0.0.1:5433/reef")
SA_URL = URL.replace("postgresql://", "postgresql+psycopg://", 1)

# Tables of this test start with this prefix, so the driver tests never collide.
PREFIX = "drv_sa_"
CUSTOMERS = PREFIX + "customers"
ORDERS = PREFIX + "orders"
VIEW = PREFIX + "big_orders"

checks = Checks(
    describe=lambda e: f"{type(e.orig).__name__}: {e.orig}" if isinstance(e, sa.exc.DBAPIError) else None,
    trace_limit=4,
)
check = checks.check


engine = sa.create_engine(SA_URL)


def fresh_inspector():
    # An inspector caches what it reflected; each check asks the database again.
    return inspect(engine)


# --- Connecting and creating a schema ---------------------------------------------------------


@check("connect: the dialect reads version(), current_schema() and the isolation level")
def _():
    with engine.connect() as c:
        expect(c.execute(text("SELECT 1")).scalar() == 1, "SELECT 1 did not return 1")
    expect(engine.dialect.server_version_info >= (10,), f"{engine.dialect.server_version_info}")
    expect(engine.dialect.default_schema_name == "public", engine.dialect.default_schema_name)


@check("create_all / drop_all: has_table before and after")
def _():
    with engine.begin() as c:
        c.execute(text(f"DROP VIEW IF EXISTS {VIEW}"))
        c.execute(text(f"DROP TABLE IF EXISTS {ORDERS}"))
        c.execute(text(f"DROP TABLE IF EXISTS {CUSTOMERS}"))
    md = sa.MetaData()
    sa.Table(
        CUSTOMERS,
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.String(100)),
        sa.UniqueConstraint("email", name=CUSTOMERS + "_email_key"),
    )
    sa.Table(
        ORDERS,
        md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("customer_id", sa.Integer, nullable=False),
        sa.Column("amount", sa.Numeric(10, 2), nullable=False, server_default="0"),
        sa.Column("status", sa.Text, nullable=False, server_default="new"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("note", sa.Text),
        sa.Index(ORDERS + "_cust_created_uidx", "customer_id", "created_at", unique=True),
        sa.Index(ORDERS + "_status_idx", "status"),
    )
    insp = fresh_inspector()
    expect(not insp.has_table(ORDERS), "has_table is true before create_all")
    md.create_all(engine)
    insp = fresh_inspector()
    expect(insp.has_table(ORDERS), "has_table is false after create_all")
    expect(insp.has_table(CUSTOMERS), "has_table(customers) is false after create_all")
    expect(not insp.has_table(PREFIX + "nope"), "has_table is true for a table that does not exist")
    with engine.begin() as c:
        c.execute(
            text(
                f"CREATE VIEW {VIEW} AS SELECT o.id, c.email, o.amount FROM {ORDERS} o "
                f"JOIN {CUSTOMERS} c ON c.id = o.customer_id WHERE o.amount > 100"
            )
        )


# --- The Inspector ------------------------------------------------------------------------------


@check("get_table_names and get_view_names")
def _():
    insp = fresh_inspector()
    tables = insp.get_table_names()
    expect(CUSTOMERS in tables and ORDERS in tables, f"tables {tables}")
    expect(VIEW not in tables, f"the view is listed as a table: {tables}")
    views = insp.get_view_names()
    expect(VIEW in views, f"views {views}")


@check("get_columns: names, types, nullability, defaults, autoincrement")
def _():
    cols = {c["name"]: c for c in fresh_inspector().get_columns(ORDERS)}
    expect(list(cols) == ["id", "customer_id", "amount", "status", "created_at", "note"], f"{list(cols)}")
    expect(isinstance(cols["id"]["type"], sa.BigInteger), f"id: {cols['id']['type']!r}")
    expect(cols["id"]["autoincrement"] is True, f"id autoincrement {cols['id']['autoincrement']}")
    expect("nextval(" in (cols["id"]["default"] or ""), f"id default {cols['id']['default']}")
    expect(isinstance(cols["customer_id"]["type"], sa.Integer), f"{cols['customer_id']['type']!r}")
    amount = cols["amount"]["type"]
    expect(isinstance(amount, sa.Numeric) and (amount.precision, amount.scale) == (10, 2), f"amount: {amount!r}")
    expect(cols["amount"]["nullable"] is False, "amount is nullable")
    expect(cols["note"]["nullable"] is True, "note is not nullable")
    expect("new" in (cols["status"]["default"] or ""), f"status default {cols['status']['default']}")
    created = cols["created_at"]["type"]
    expect(isinstance(created, sa.DateTime) and created.timezone, f"created_at: {created!r}")
    name = {c["name"]: c for c in fresh_inspector().get_columns(CUSTOMERS)}["name"]["type"]
    expect(isinstance(name, sa.String) and name.length == 100, f"customers.name: {name!r}")


@check("get_pk_constraint")
def _():
    pk = fresh_inspector().get_pk_constraint(ORDERS)
    expect(pk["constrained_columns"] == ["id"], f"{pk}")
    expect(pk["name"] == ORDERS + "_pkey", f"{pk}")


@check("get_indexes: unique and plain, columns in order, the constraint's index left out")
def _():
    idx = {i["name"]: i for i in fresh_inspector().get_indexes(ORDERS)}
    expect(set(idx) == {ORDERS + "_cust_created_uidx", ORDERS + "_status_idx"}, f"{sorted(idx)}")
    u = idx[ORDERS + "_cust_created_uidx"]
    expect(u["unique"] is True and u["column_names"] == ["customer_id", "created_at"], f"{u}")
    s = idx[ORDERS + "_status_idx"]
    expect(s["unique"] is False and s["column_names"] == ["status"], f"{s}")
    cidx = fresh_inspector().get_indexes(CUSTOMERS)
    for i in cidx:
        expect(i.get("duplicates_constraint") == i["name"], f"a UNIQUE constraint's index is a plain index: {i}")


@check("get_unique_constraints")
def _():
    uq = fresh_inspector().get_unique_constraints(CUSTOMERS)
    expect(len(uq) == 1, f"{uq}")
    expect(uq[0]["name"] == CUSTOMERS + "_email_key" and uq[0]["column_names"] == ["email"], f"{uq}")


@check("get_foreign_keys and get_check_constraints (none)")
def _():
    insp = fresh_inspector()
    expect(insp.get_foreign_keys(ORDERS) == [], f"{insp.get_foreign_keys(ORDERS)}")
    expect(insp.get_check_constraints(ORDERS) == [], f"{insp.get_check_constraints(ORDERS)}")


@check("get_view_definition and the view's columns")
def _():
    insp = fresh_inspector()
    d = insp.get_view_definition(VIEW)
    expect(d is not None and "amount >" in d and "100" in d, f"definition {d!r}")
    cols = [(c["name"], type(c["type"]).__name__) for c in insp.get_columns(VIEW)]
    expect([n for n, _ in cols] == ["id", "email", "amount"], f"{cols}")


@check("get_multi_columns over every table at once")
def _():
    multi = fresh_inspector().get_multi_columns()
    expect((None, ORDERS) in multi and (None, CUSTOMERS) in multi, f"{sorted(multi)[:10]}")


# --- MetaData().reflect() and using what it found -------------------------------------------------


@check("MetaData().reflect(): tables, columns, keys and indexes")
def _():
    md = sa.MetaData()
    md.reflect(engine, only=[CUSTOMERS, ORDERS])
    expect(set(md.tables) == {CUSTOMERS, ORDERS}, f"{sorted(md.tables)}")
    orders = md.tables[ORDERS]
    expect([c.name for c in orders.primary_key.columns] == ["id"], f"{orders.primary_key}")
    expect({i.name for i in orders.indexes} == {ORDERS + "_cust_created_uidx", ORDERS + "_status_idx"}, f"{orders.indexes}")
    customers = md.tables[CUSTOMERS]
    uniques = [c for c in customers.constraints if isinstance(c, sa.UniqueConstraint)]
    expect([list(c.columns.keys()) for c in uniques] == [["email"]], f"{customers.constraints}")


@check("reflected tables insert and select (the serial key fills itself)")
def _():
    md = sa.MetaData()
    customers = sa.Table(CUSTOMERS, md, autoload_with=engine)
    orders = sa.Table(ORDERS, md, autoload_with=engine)
    with engine.begin() as c:
        cid = c.execute(customers.insert().values(email="a@example.com", name="A").returning(customers.c.id)).scalar_one()
    # One order per transaction: (customer_id, created_at) is unique and now() is per transaction.
    for amount in (Decimal("150.00"), Decimal("5")):
        with engine.begin() as c:
            c.execute(orders.insert(), [{"customer_id": cid, "amount": amount}])
    with engine.connect() as c:
        rows = c.execute(
            sa.select(orders.c.amount, orders.c.status).where(orders.c.customer_id == cid).order_by(orders.c.amount)
        ).all()
        expect(rows == [(Decimal("5.00"), "new"), (Decimal("150.00"), "new")], f"{rows}")
        big = c.execute(sa.select(sa.func.count()).select_from(sa.Table(VIEW, sa.MetaData(), autoload_with=engine))).scalar()
        expect(big == 1, f"{big} rows in the view")


@check("ORM: a mapped class over the reflected schema")
def _():
    class Base(DeclarativeBase):
        pass

    class Customer(Base):
        __tablename__ = CUSTOMERS
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str]
        name: Mapped[str | None]

    with Session(engine) as s:
        s.add(Customer(email="b@example.com", name="B"))
        s.commit()
        got = s.scalars(sa.select(Customer).where(Customer.email == "b@example.com")).one()
        expect(got.name == "B" and got.id > 0, f"{got.id} {got.name}")


@check("drop_all")
def _():
    with engine.begin() as c:
        c.execute(text(f"DROP VIEW {VIEW}"))
    md = sa.MetaData()
    md.reflect(engine, only=[CUSTOMERS, ORDERS])
    md.drop_all(engine)
    expect(not fresh_inspector().has_table(ORDERS), "has_table is true after drop_all")


# --- Summary --------------------------------------------------------------------------------

engine.dispose()
checks.finish("sqlalchemy", f"SQLAlchemy {sa.__version__}")
