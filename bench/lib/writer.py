"""A steady writer for the benchmarks: an application committing small transactions.

usage: writer.py --rate R --duration S --out FILE [--autocheckpoint N] DB...
Commits R transactions per second to each database (evenly spread over time and databases) for
S seconds. Each commit inserts one row whose text is the marker "WSMK<n:08d>" (n = 1, 2, ... per
database) plus 100 random bytes, so a benchmark can find in a WAL segment the newest commit it
holds. synchronous=NORMAL (the usual setting in WAL mode: no fsync per commit), busy_timeout 5 s.
--autocheckpoint 0 turns SQLite's auto-checkpoint off (then this process writes only WAL frames,
which makes its write(2) byte count the number of WAL bytes written).
At the end (or on SIGTERM) writes JSON to FILE: {"start", "end", "times": [[t1, t2, ...], ...]},
the wall-clock time (time.time()) just after each COMMIT returned, per database.
"""
import argparse
import json
import signal
import sqlite3
import time

parser = argparse.ArgumentParser()
parser.add_argument("--rate", type=float, required=True)
parser.add_argument("--duration", type=float, required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--autocheckpoint", type=int, default=None)
parser.add_argument("dbs", nargs="+")
args = parser.parse_args()

stop = False


def on_term(_signum, _frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)

connections = []
for path in args.dbs:
    con = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    con.execute("PRAGMA synchronous=NORMAL")
    if args.autocheckpoint is not None:
        con.execute("PRAGMA wal_autocheckpoint=%d" % args.autocheckpoint)
    connections.append(con)

n = len(connections)
times = [[] for _ in range(n)]
interval = 1.0 / (args.rate * n)
start = time.time()
k = 0
while not stop:
    due = start + k * interval
    if due - start >= args.duration:
        break
    delay = due - time.time()
    if delay > 0:
        time.sleep(delay)
    i = k % n
    con = connections[i]
    con.execute("BEGIN")
    con.execute("INSERT INTO t(marker, pad) VALUES (?, randomblob(100))", ("WSMK%08d" % (len(times[i]) + 1),))
    con.execute("COMMIT")
    times[i].append(time.time())
    k += 1
end = time.time()
for con in connections:
    con.close()
with open(args.out, "w") as f:
    json.dump({"start": start, "end": end, "times": times}, f)
