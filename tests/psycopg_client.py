"""Drives a Meridian node with psycopg 3, as a Python application would: server-side
parameters and prepared statements (executemany), text and binary results, NUMERIC, DATE,
TIMESTAMP and UUID values, error classes, transactions (autocommit off, `with
conn.transaction()`), COPY FROM STDIN and COPY TO STDOUT.

Usage: python3 tests/psycopg_client.py POSTGRES_URL   (run by crates/server/tests/psycopg.rs)
"""

import datetime
import decimal
import sys
import uuid

import psycopg


def main(url):
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE acct (id INT PRIMARY KEY, owner TEXT, bal NUMERIC(10,2), "
                "opened DATE, seen TIMESTAMP, tag UUID)"
            )
            rows = [
                (i, f"owner {i}", decimal.Decimal("100.50") * i, datetime.date(2024, 1, i),
                 datetime.datetime(2024, 1, i, 12, 30, 15, 250000), uuid.UUID(int=i))
                for i in range(1, 8)
            ]
            # Past psycopg's prepare threshold: the statement is prepared on the server.
            cur.executemany("INSERT INTO acct VALUES (%s, %s, %s, %s, %s, %s)", rows)
        conn.commit()

        with conn.cursor() as cur:
            cur.execute("SELECT * FROM acct WHERE id >= %s ORDER BY id", (3,))
            got = cur.fetchall()
            assert got == rows[2:], got

        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT sum(bal), count(*), max(opened) FROM acct")
            assert cur.fetchone() == (decimal.Decimal("2814.00"), 7, datetime.date(2024, 1, 7))

        # A unique violation is an exception of its class, and the transaction must roll back.
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO acct (id) VALUES (%s)", (1,))
            raise AssertionError("duplicate key accepted")
        except psycopg.errors.UniqueViolation as e:
            assert e.sqlstate == "23505"
        conn.rollback()

        with conn.transaction():
            with conn.cursor() as cur:
                cur.execute("UPDATE acct SET bal = bal - %s WHERE id = %s", (decimal.Decimal("0.50"), 1))
        with conn.cursor() as cur:
            cur.execute("SELECT bal FROM acct WHERE id = 1")
            assert cur.fetchone() == (decimal.Decimal("100.00"),)

        # A failed block refuses statements until it rolls back.
        try:
            with conn.transaction():
                with conn.cursor() as cur:
                    cur.execute("SELECT 1 / 0")
        except psycopg.errors.DivisionByZero:
            pass
        with conn.cursor() as cur:
            with cur.copy("COPY acct (id, owner) FROM STDIN") as copy:
                for i in range(10, 13):
                    copy.write_row((i, f"copied\t{i}"))
            cur.execute("SELECT owner FROM acct WHERE id = 11")
            assert cur.fetchone() == ("copied\t11",)
            out = b""
            with cur.copy("COPY (SELECT id, owner FROM acct WHERE id >= 10 ORDER BY id) TO STDOUT") as copy:
                for block in copy:
                    out += bytes(block)
            assert out == b"10\tcopied\\t10\n11\tcopied\\t11\n12\tcopied\\t12\n", out
        conn.commit()
    print("psycopg client: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
