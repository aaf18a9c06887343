/**
 * Fetching ahead (src/log/prefetch.ts) on a real file:// store wrapped to record every request:
 * objects come out in order; an object that fits the byte budget is downloaded whole ahead of its turn,
 * however large, while the bodies held ahead never exceed the budget; an object larger than the whole
 * budget is only HEADed ahead and streamed in its turn; a missing object comes out with `info: null`.
 */
import assert from "node:assert/strict";
import type { BackupObject } from "../src/layout.ts";
import { prefetch } from "../src/log/prefetch.ts";
import { FileStore } from "../src/storage/file.ts";
import { bytesSource } from "../src/storage/source.ts";
import type { ObjectData, Store } from "../src/storage/store.ts";
import { cleanup, tempDir } from "./helpers.ts";

const KIB = 1024;

/** Segments of the given sizes (KiB) in one generation, stored under `app/wal/`. */
async function storeSegments(store: Store, sizesKib: number[]): Promise<BackupObject[]> {
  const objects: BackupObject[] = [];
  for (const [i, kib] of sizesKib.entries()) {
    const key = `app/wal/00000001-${String(1_700_000_000_000 + i).padStart(17, "0")}.wal`;
    const body = new Uint8Array(kib * KIB).fill(i + 1);
    await store.put(key, bytesSource(body), { index: String(i) });
    objects.push({
      key,
      name: "app",
      kind: "segment",
      generation: 1,
      time: 1_700_000_000_000 + i,
      size: body.length,
    });
  }
  return objects;
}

/** Records the requests made of `inner`, and which GETs had their body read to the end. */
function recording(inner: Store) {
  const log: { op: "get" | "head"; key: string }[] = [];
  const store: Store = Object.create(inner);
  store.get = async (key: string): Promise<ObjectData> => {
    log.push({ op: "get", key });
    return await inner.get(key);
  };
  store.head = async (key: string) => {
    log.push({ op: "head", key });
    return await inner.head(key);
  };
  return { store, log };
}

async function* listing(objects: BackupObject[]): AsyncGenerator<BackupObject> {
  yield* objects;
}

async function readBody(data: ObjectData): Promise<Uint8Array> {
  return new Uint8Array(await new Response(data.body).arrayBuffer());
}

Deno.test("prefetch downloads large objects whole ahead within the byte budget, in order", async () => {
  const dir = await tempDir();
  try {
    const inner = new FileStore(`${dir}/backup`);
    // Budget 4,000 KiB: 1,200 KiB objects (over 1 MiB) fit three at a time; the 5,000 KiB one never fits.
    const objects = await storeSegments(inner, [1200, 1200, 1200, 1200, 5000, 1200, 100, 1200]);
    const { store, log } = recording(inner);
    const budget = 4000 * KIB;
    const seen: string[] = [];
    for await (const item of prefetch(store, listing(objects), { aheadBytes: budget, window: 16 })) {
      // Ahead of this item: everything requested for a later object. Whole downloads ahead stay in budget.
      const position = objects.findIndex((o) => o.key === item.object.key);
      const later = new Set(objects.slice(position + 1).map((o) => o.key));
      const wholeAhead = log.filter((r) => r.op === "get" && later.has(r.key))
        .reduce((sum, r) => sum + objects.find((o) => o.key === r.key)!.size, 0);
      assert.ok(
        wholeAhead <= budget,
        `${wholeAhead} bytes held ahead of ${item.object.key}, budget ${budget}`,
      );
      assert.ok(item.info, `${item.object.key} exists`);
      const body = await readBody(await item.open());
      assert.equal(body.length, item.object.size);
      assert.equal(body[0], position + 1, "the body of this object, not another's");
      seen.push(item.object.key);
    }
    assert.deepEqual(seen, objects.map((o) => o.key), "objects come out in their order");
    const ops = (key: string) => log.filter((r) => r.key === key).map((r) => r.op);
    // Larger than 1 MiB, under the budget: fetched whole ahead (one GET, no HEAD) like the small ones.
    for (const o of objects.filter((o) => o.size <= budget)) assert.deepEqual(ops(o.key), ["get"], o.key);
    // Larger than the budget: metadata ahead, streamed in its turn.
    assert.deepEqual(ops(objects[4].key), ["head", "get"]);
    // Ahead means ahead: the second object's GET was issued before the first was taken.
    assert.deepEqual(log.slice(0, 3).map((r) => r.key), objects.slice(0, 3).map((o) => o.key));
  } finally {
    await cleanup(dir);
  }
});

Deno.test("prefetch: a missing object comes out with info null; stopping early drops what was fetched", async () => {
  const dir = await tempDir();
  try {
    const inner = new FileStore(`${dir}/backup`);
    const objects = await storeSegments(inner, [10, 10, 10, 10]);
    await inner.delete(objects[1].key);
    const { store } = recording(inner);
    const infos: (string | null)[] = [];
    for await (const item of prefetch(store, listing(objects), { aheadBytes: 64 * KIB })) {
      infos.push(item.info ? item.object.key : null);
      if (infos.length === 3) break;
    }
    assert.deepEqual(infos, [objects[0].key, null, objects[2].key]);
  } finally {
    await cleanup(dir);
  }
});
