/**
 * Reference for the marginal memory of a watched database: what node:sqlite alone costs for one
 * read-only connection per database holding a read transaction, as walsync's replicas do.
 *
 * usage: deno run -A bench/lib/sqlite_rss.ts DB...
 * Prints JSON {"before": MB, "after": MB, "count": N}: VmRSS after importing node:sqlite and
 * after opening every database (readOnly, BEGIN + a read of sqlite_schema) and waiting 1 s.
 * @module
 */
import { DatabaseSync } from "node:sqlite";

function rssMB(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(Deno.readTextFileSync("/proc/self/status"));
  return Number(m![1]) * 1024 / 1e6;
}

const before = rssMB();
const open: DatabaseSync[] = [];
for (const path of Deno.args) {
  const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 });
  db.exec("BEGIN");
  db.prepare("SELECT count(*) FROM sqlite_schema").get();
  open.push(db);
}
await new Promise((r) => setTimeout(r, 1000));
console.log(JSON.stringify({ before, after: rssMB(), count: open.length }));
for (const db of open) db.close();
