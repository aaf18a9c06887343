"""Builds a large WAL-mode database for the throughput benchmarks.

usage: build_db.py PATH TOTAL_MIB TAIL_MIB
Random 4000-byte blobs (about one row per 4 KiB page) inserted in big transactions; everything
but the last TAIL_MIB is checkpointed into the main file, the last TAIL_MIB stays only in the
-wal file (wal_autocheckpoint=0, then os._exit(0) so that closing cannot checkpoint): a live
database whose snapshot has to lay WAL frames over the main file.
"""
import os
import sqlite3
import sys

path, total_mib, tail_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ROW, BATCH = 4000, 2000


def rows(mib):
    return max(1, mib * 1024 * 1024 // 4096)


con = sqlite3.connect(path, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=OFF")
con.execute("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL)")


def insert(n):
    for start in range(0, n, BATCH):
        con.execute("BEGIN")
        con.executemany("INSERT INTO blobs(data) VALUES (?)",
                        ((os.urandom(ROW),) for _ in range(min(BATCH, n - start))))
        con.execute("COMMIT")


insert(rows(total_mib - tail_mib))
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.execute("PRAGMA wal_autocheckpoint=0")
insert(rows(tail_mib))
sys.stdout.flush()
os._exit(0)
