"""Builds and grows the databases of the restore side by side (bench/restore.ts).

usage: grow_db.py init MIB DB...                 a ~MIB MiB WAL-mode database (checkpointed), copied to each DB
       grow_db.py grow MIB TXNS INTERVAL DB...   adds ~MIB MiB in TXNS transactions, INTERVAL s apart
Rows are "ordinary application data": a marker, a number and 2,000 hex characters of seeded random
bytes (compress about 2:1), one row per ~2 KiB. The content is seeded, so every DB given receives the
same rows in the same transactions (one copy per tool). At the end `grow` prints the row count.
"""
import os
import random
import shutil
import sqlite3
import sys
import time

ROW_BYTES = 2100


def rows_for(mib):
    return max(1, int(mib * 1024 * 1024 / ROW_BYTES))


def batch(rng, start, n):
    return [("RSMK%08d" % (start + i), start + i, rng.randbytes(1000).hex()) for i in range(n)]


cmd = sys.argv[1]
if cmd == "init":
    mib, dbs = float(sys.argv[2]), sys.argv[3:]
    first = dbs[0]
    con = sqlite3.connect(first, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, marker TEXT, n INTEGER, payload TEXT)")
    con.execute("BEGIN")
    con.executemany("INSERT INTO t(marker, n, payload) VALUES (?, ?, ?)", batch(random.Random(1), 0, rows_for(mib)))
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    for other in dbs[1:]:
        shutil.copyfile(first, other)
elif cmd == "grow":
    mib, txns, interval, dbs = float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]
    cons = []
    for path in dbs:
        con = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        con.execute("PRAGMA synchronous=NORMAL")
        cons.append(con)
    start = cons[0].execute("SELECT count(*) FROM t").fetchone()[0]
    per = rows_for(mib) // txns
    rng = random.Random(2)
    t0 = time.time()
    for k in range(txns):
        delay = t0 + k * interval - time.time()
        if delay > 0:
            time.sleep(delay)
        rows = batch(rng, start + k * per, per)
        for con in cons:
            con.execute("BEGIN")
            con.executemany("INSERT INTO t(marker, n, payload) VALUES (?, ?, ?)", rows)
            con.execute("COMMIT")
    count = cons[0].execute("SELECT count(*) FROM t").fetchone()[0]
    for con in cons:
        con.close()
    print(count)
else:
    sys.exit("usage: grow_db.py init MIB DB... | grow MIB TXNS INTERVAL DB...")
