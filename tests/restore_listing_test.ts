/**
 * Listing with a start-after seek, as the backup-log layer streams history: the same keys in the same
 * (lexicographic) order as a full listing filtered by hand, on RGW (over several 1,000-key pages) and
 * on file:// (which walks only the prefix's directory, and reads a large directory in pages).
 */
import assert from "node:assert/strict";
import { openStore } from "../src/storage/open.ts";
import { directoryNames, pagedFiles, smallDirectory, sortedFiles } from "../src/storage/file_list.ts";
import { bytesSource } from "../src/storage/source.ts";
import type { Store } from "../src/storage/store.ts";
import { cleanup, freshBackend, tempDir } from "./helpers.ts";

/** Keys that exercise the ordering of "/" against "-" and "." and nested folders. */
function keys(segments: number): string[] {
  const out = ["a.b/x", "a-c/y", "a/state.json", "a/snapshots/00000001-1.db", "a/zz", "b/wal/1", "top"];
  for (let i = 0; i < segments; i++) out.push(`a/wal/00000001-${String(i).padStart(6, "0")}.wal`);
  return out;
}

async function listed(store: Store, prefix: string, startAfter?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix, startAfter)) out.push(o.key);
  return out;
}

async function fill(store: Store, all: string[]): Promise<void> {
  const body = new TextEncoder().encode("x");
  for (let i = 0; i < all.length; i += 32) {
    await Promise.all(all.slice(i, i + 32).map((k) => store.put(k, bytesSource(body), {})));
  }
}

for (const label of ["s3", "file"] as const) {
  Deno.test(`[${label}] list(prefix, startAfter) seeks and keeps key order`, async () => {
    const backend = await freshBackend(label);
    const store = openStore(backend.url, { env: (n) => backend.env[n] ?? Deno.env.get(n) });
    const all = keys(label === "s3" ? 2100 : 300);
    await fill(store, all);
    const sorted = [...all].sort();
    assert.deepEqual(await listed(store, ""), sorted);
    const cases: [string, string | undefined][] = [
      ["a/", undefined],
      ["a/wal/", "a/wal/00000001-000150.wal"],
      ["a/wal/", "a/wal/00000001-001999.wal"],
      ["a/", "a/snapshots/~"],
      ["a/wal/00000001-0002", undefined],
      ["", "a.b/x"],
      ["", "a/wal"],
      ["a/", "a/zz"],
    ];
    for (const [prefix, after] of cases) {
      const expected = sorted.filter((k) => k.startsWith(prefix) && (after === undefined || k > after));
      assert.deepEqual(await listed(store, prefix, after), expected, `list(${prefix}, ${after})`);
    }
    await cleanup(backend);
  });
}

Deno.test("[file] a directory is read in order after a cursor: through sort, in pages, or at once when small", async () => {
  const dir = await tempDir();
  const names = Array.from({ length: 103 }, (_, i) => `n${String((i * 37) % 103).padStart(3, "0")}`);
  for (const n of names) await Deno.writeTextFile(`${dir}/${n}`, "");
  await Deno.writeTextFile(`${dir}/n050.meta.json`, "");
  const expected = [...names].sort().filter((n) => n > "n010");
  const keep = (n: string) => !n.endsWith(".meta.json");
  // Sorted by `sort` outside the process, streamed in one pass (the size limit of a small directory at 0):
  assert.deepEqual(
    await Array.fromAsync(sortedFiles(dir, "n010", keep, ["*.meta.json"], 50_000, 0)),
    expected,
  );
  // A small directory, read at once by Deno's reader: the same names.
  assert.ok(smallDirectory(dir), "103 short names make a small directory");
  assert.deepEqual(await Array.fromAsync(sortedFiles(dir, "n010", keep, ["*.meta.json"])), expected);
  await Deno.mkdir(`${dir}/sub`);
  assert.deepEqual(await directoryNames(dir), ["sub"]);
  assert.deepEqual(await directoryNames(dir, 0), ["sub"], "through find");
  assert.deepEqual(await directoryNames(`${dir}/missing`), []);
  assert.deepEqual(await Array.fromAsync(sortedFiles(`${dir}/missing`, "", keep)), []);
  // The fallback without `sh`/`sort`: scans of 7 names each.
  assert.deepEqual(await Array.fromAsync(pagedFiles(dir, "n010", () => true, ["*.meta.json"], 7)), expected);
  // A reader that stops early leaves no child process blocked on a full pipe.
  for await (const name of sortedFiles(dir, "", () => true, [], 50_000, 0)) if (name) break;
  await cleanup(dir);
});

Deno.test("[file] a backup directory reached through a symbolic link lists like the real one", async () => {
  const root = await tempDir();
  const real = `${root}/real`;
  const store = openStore(`file://${real}`);
  const all = keys(30).sort();
  await fill(store, all);
  await Deno.symlink(real, `${root}/link`);
  const linked = openStore(`file://${root}/link`);
  assert.deepEqual(await listed(linked, ""), all, "find must follow the link it is given (-H)");
  assert.deepEqual(
    await listed(linked, "a/wal/", "a/wal/00000001-000009.wal"),
    all.filter((k) => k > "a/wal/00000001-000009.wal" && k.startsWith("a/wal/")),
  );
  await cleanup(root);
});
