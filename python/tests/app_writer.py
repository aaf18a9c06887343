"""A separate application process that writes a SQLite database in WAL mode, for the tests.

usage:
  app_writer.py fill DB ROWS        ROWS more rows in one transaction; exits without closing the
                                    connection, so the rows stay in the -wal file
  app_writer.py run DB SECONDS      one small transaction after another for SECONDS; prints the
                                    number of rows at the end
Row i holds a value derived from i, so any state can be checked.
"""
import hashlib
import os
import sqlite3
import sys
import time


def value(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (1 + i % 40)


def connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
    return db


def insert(db: sqlite3.Connection, count: int) -> int:
    start = db.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()[0] + 1
    db.execute("BEGIN")
    db.executemany("INSERT INTO t(id, v) VALUES (?, ?)", [(i, value(i)) for i in range(start, start + count)])
    db.execute("COMMIT")
    return start + count - 1


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    db = connect(path)
    if mode == "fill":
        insert(db, int(sys.argv[3]))
        sys.stdout.flush()
        os._exit(0)  # no close: no checkpoint on exit, the rows stay in the WAL
    elif mode == "run":
        deadline = time.monotonic() + float(sys.argv[3])
        last = 0
        while time.monotonic() < deadline:
            last = insert(db, 1 + last % 7)
        print(last, flush=True)
        os._exit(0)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
