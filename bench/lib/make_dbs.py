"""Creates N small SQLite databases in WAL mode for the benchmarks.

usage: make_dbs.py DIR COUNT [ROWS]
Writes DIR/db-0000.db ... with table t(id INTEGER PRIMARY KEY, marker TEXT, pad BLOB) holding
ROWS (default 20) rows of 100 random bytes; the WAL is checkpointed and removed on close, the
database stays in WAL mode. Prints the paths, one a line.
"""
import os
import sqlite3
import sys

directory, count = sys.argv[1], int(sys.argv[2])
rows = int(sys.argv[3]) if len(sys.argv) > 3 else 20
for i in range(count):
    path = os.path.join(directory, "db-%04d.db" % i)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, marker TEXT, pad BLOB)")
    con.execute("BEGIN")
    con.executemany("INSERT INTO t(marker, pad) VALUES ('init', randomblob(100))", [()] * rows)
    con.execute("COMMIT")
    con.close()
    print(path)
