/**
 * Proving mid-generation snapshots: a snapshot's checksums only say it is the file that was stored,
 * not that it is the database at its position. A full `verify` replays the generation from its first
 * snapshot into a temporary file (streamed, segments fetched ahead; where compaction deleted
 * segments, the level-1 page set that replaced them) and, at each later snapshot's position,
 * compares the SHA-256 of the replayed image with the snapshot's content digest. A difference
 * (a snapshot forged or taken wrongly, or history before it that lost a commit) is damage: restores
 * from the snapshot and from before it would disagree (docs/design.md §7).
 * @module
 */
import { newSha256 } from "../hash.ts";
import type { BackupObject } from "../layout.ts";
import { chainOrder } from "../log/duplicates.ts";
import { type GenerationHistory, replayOrder, segmentsOf } from "../log/history.ts";
import { pageSetsOf } from "../compact/history.ts";
import type { PageSetObject } from "../compact/key.ts";
import { replayPageSet } from "../compact/replay.ts";
import { substituteCompacted } from "../compact/verify_chain.ts";
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
    // Level-1 sets stand in for runs of segments compaction deleted (sets never span a snapshot).
    const level1 = (g.pages ? await pageSetsOf(store, name, g.generation) : [])
      .filter((s) => s.level === 1 && s.firstTime > first.time)
      .sort((a, b) => a.time - b.time);
    const segments = substituteCompacted(
      segmentsOf(store, name, g.generation, first.time),
      level1,
      new Set(),
    );
    const fetched = withMeta(prefetch(store, replayOrder(later, segments)));
    for await (const { item, orphan } of chainOrder(fetched, state)) {
      if (orphan) {
        item.release();
        continue;
      }
      if (item.object.kind === "segment") {
        state = await replaySegment(store, item.object as SegmentObject, state, writer, item.open);
        continue;
      }
      if (item.object.kind === "pages") {
        const set = item.object as PageSetObject;
        state = (await replayPageSet(store, set, state, writer, item.open)).state;
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
      `SHA-256 ${actual}, the snapshot ${expected} (this snapshot, or the history before it, is wrong: ` +
      "restores from it and from before it disagree)",
    { generation: object.generation },
  );
}
