/**
 * Proving mid-generation snapshots: a snapshot's checksums only say it is the file that was stored,
 * not that it is the database at its position. A full `verify` replays the generation from its first
 * snapshot into a temporary file (streamed, segments fetched ahead) and, at each later snapshot's
 * position, compares the SHA-256 of the replayed image with the snapshot's content digest. A
 * snapshot that differs (forged, or taken wrongly) is damage (docs/design.md, "What verify proves").
 * @module
 */
import { newSha256 } from "../hash.ts";
import type { BackupObject } from "../layout.ts";
import { chainOrder } from "../log/duplicates.ts";
import { type GenerationHistory, replayOrder, segmentsOf } from "../log/history.ts";
import { prefetch, withMeta } from "../log/prefetch.ts";
import type { SnapshotMeta } from "../metadata.ts";
import type { Store } from "../storage/store.ts";
import {
  fileWriter,
  replaySegment,
  replaySnapshot,
  type ReplayState,
  type SegmentObject,
  snapshotContinuity,
  type SnapshotObject,
} from "./apply.ts";
import { type Damage, DamageError, damageOf } from "./damage.ts";
import { reusedChunks } from "./frames.ts";

/**
 * The digest of a snapshot's decoded content, as its metadata records it (`content-sha256`; `sha256`
 * covers the stored, possibly compressed or encrypted, bytes: docs/design.md §4.1).
 */
function contentDigest(meta: SnapshotMeta): string | undefined {
  return meta.contentSha256;
}

/** SHA-256 of the first `size` bytes of `path`, streamed. */
async function digestOf(path: string, size: number): Promise<string> {
  const hash = newSha256();
  using file = await Deno.open(path, { read: true });
  let left = size;
  for await (const chunk of reusedChunks(file.readable)) {
    const part = chunk.subarray(0, Math.min(left, chunk.byteLength));
    hash.update(part);
    left -= part.byteLength;
    if (left === 0) break;
  }
  return hash.digest("hex");
}

/**
 * Replays generation `g` of `name` from its first snapshot and checks every later snapshot against the
 * replayed state at its position. Returns the damage found (snapshots whose content differs). Stops
 * quietly at the first object that cannot be replayed: that damage is reported by the object checks.
 */
export async function proveSnapshots(store: Store, name: string, g: GenerationHistory): Promise<Damage[]> {
  if (g.snapshots.length < 2) return [];
  const damages: Damage[] = [];
  const path = await Deno.makeTempFile({ prefix: "walsync-verify-" });
  try {
    using file = await Deno.open(path, { read: true, write: true });
    const writer = fileWriter(file);
    const [first, ...later] = g.snapshots;
    let state: ReplayState = await replaySnapshot(store, first as SnapshotObject, writer);
    const objects = replayOrder(later, segmentsOf(store, name, g.generation, first.time));
    const fetched = withMeta(prefetch(store, objects));
    for await (const { item, orphan } of chainOrder(fetched, state)) {
      if (orphan) {
        item.release();
        continue;
      }
      if (item.object.kind === "segment") {
        state = await replaySegment(store, item.object as SegmentObject, state, writer, item.open);
        continue;
      }
      item.release();
      const meta = item.meta as SnapshotMeta | null;
      if (!meta || snapshotContinuity(state, meta) !== null) continue; // reported by the chain checks
      const expected = contentDigest(meta);
      await writer.flush?.(); // each object flushes its own writes; this is the safety net
      const actual = await digestOf(path, meta.pageSize * meta.pageCount);
      if (expected && actual !== expected) damages.push(differs(item.object, first, actual, expected));
    }
  } catch (e) {
    if (!(e instanceof DamageError)) throw e;
  } finally {
    await Deno.remove(path).catch(() => {});
  }
  return damages;
}

function differs(object: BackupObject, first: BackupObject, actual: string, expected: string): Damage {
  return damageOf(
    object.key,
    "snapshot",
    "corrupt",
    `its content is not the database at its position: replayed from ${first.key}, the image has ` +
      `SHA-256 ${actual}, the snapshot ${expected}`,
    { generation: object.generation },
  );
}
