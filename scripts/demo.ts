/**
 * The README's first command: walsync's main job against a local directory, end to end.
 * Creates a database in WAL mode, replicates it with `walsync watch` while an application writes
 * to it, stops watch with SIGINT, restores the latest state and a point in time, and checks the
 * restore against the source byte for byte. Everything happens in a temporary directory.
 *
 * usage: scripts/deno.sh run -A scripts/demo.ts   (or: bash scripts/demo.sh)
 */
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const dir = await Deno.makeTempDir({ prefix: "walsync-demo-" });
const db = `${dir}/shop.db`;
const backups = `file://${dir}/backups`;

/** Runs walsync with the terminal as its stdout and stderr. */
function walsync(args: string[]) {
  return new Deno.Command(Deno.execPath(), { args: ["run", "-A", "--quiet", MAIN, ...args] });
}

console.log(`demo directory: ${dir}\n`);
const app = new DatabaseSync(db);
app.exec("PRAGMA journal_mode=WAL; CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT, at TEXT)");

console.log(`$ walsync watch ${db} -b ${backups}`);
const watch = walsync(["watch", db, "-b", backups]).spawn();
await new Promise((r) => setTimeout(r, 1500));

const insert = app.prepare("INSERT INTO orders(item, at) VALUES (?, ?)");
let middle = "";
for (let i = 1; i <= 40; i++) {
  insert.run(`item-${i}`, new Date().toISOString());
  if (i === 20) {
    await new Promise((r) => setTimeout(r, 1200));
    middle = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 1200));
  }
  await new Promise((r) => setTimeout(r, 50));
}
await new Promise((r) => setTimeout(r, 2000));
watch.kill("SIGINT");
const watched = await watch.status;
console.log(`watch exited with ${watched.code}\n`);

console.log(`$ walsync list -b ${backups}`);
await walsync(["list", "-b", backups]).spawn().status;

console.log(`\n$ walsync restore shop -o ${dir}/restored.db -b ${backups}`);
await walsync(["restore", "shop", "-o", `${dir}/restored.db`, "-b", backups]).spawn().status;
console.log(`\n$ walsync restore shop -o ${dir}/at-middle.db -b ${backups} --point-in-time ${middle}`);
await walsync(["restore", "shop", "-o", `${dir}/at-middle.db`, "-b", backups, "--point-in-time", middle])
  .spawn()
  .status;

app.exec("PRAGMA wal_checkpoint(TRUNCATE)");
app.close();
const same = (await Deno.readFile(db)).toString() === (await Deno.readFile(`${dir}/restored.db`)).toString();
const rows = (path: string) => {
  const d = new DatabaseSync(path, { readOnly: true });
  const n = (d.prepare("SELECT count(*) AS n FROM orders").get() as { n: number }).n;
  d.close();
  return n;
};
console.log(
  `\nlatest restore: ${rows(`${dir}/restored.db`)} orders, byte-for-byte equal to the source: ${same}`,
);
console.log(
  `point-in-time restore (${middle}): ${rows(`${dir}/at-middle.db`)} orders (the source had 20 then)`,
);
if (!same || watched.code !== 0 || rows(`${dir}/at-middle.db`) !== 20) Deno.exit(1);
