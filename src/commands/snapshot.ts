/**
 * `walsync snapshot`: one consistent image of a live database, uploaded as the first object of a
 * new generation and confirmed by a HEAD.
 * @module
 */
import { latestTime, readCatalog } from "../catalog.ts";
import { defaultName, nextTime, snapshotKey, validateName } from "../layout.ts";
import * as log from "../log.ts";
import { encodeSnapshotMeta } from "../metadata.ts";
import { onInterrupt } from "../shutdown.ts";
import { openConsistentImage } from "../sqlite/image.ts";
import type { Store } from "../storage/store.ts";
import { uploadVerified } from "../storage/upload.ts";

/** What `snapshot` reports. */
export interface SnapshotResult {
  name: string;
  generation: number;
  key: string;
  time: string;
  /** Size and SHA-256 of the stored object (compressed and/or encrypted; what `list` shows). */
  size: number;
  sha256: string;
  pageSize: number;
  /** Size of the database image. */
  databaseSize: number;
}

/** Takes a snapshot of `dbPath` into `store` as a new generation of `name`. */
export async function snapshotCommand(store: Store, dbPath: string, name?: string): Promise<SnapshotResult> {
  const dbName = validateName(name ?? defaultName(dbPath));
  const held = await openConsistentImage(dbPath);
  const unregister = onInterrupt(() => held.release());
  try {
    const [catalog] = await readCatalog(store, dbName);
    const generation = (catalog?.generations.at(-1)?.generation ?? 0) + 1;
    const time = nextTime(latestTime(catalog));
    const key = snapshotKey(dbName, generation, time);
    const { image } = held;
    log.info(`snapshot of ${dbPath} (${image.size} bytes, ${image.mode} mode) -> ${store.url}/${key}`);
    const uploaded = await uploadVerified(
      store,
      key,
      image,
      encodeSnapshotMeta({
        pageSize: image.pageSize,
        pageCount: image.pageCount,
        position: image.position,
        segmentsBefore: 0,
      }),
    );
    return {
      name: dbName,
      generation,
      key,
      time: new Date(time).toISOString(),
      size: uploaded.size,
      pageSize: image.pageSize,
      databaseSize: uploaded.contentSize,
      sha256: uploaded.sha256,
    };
  } finally {
    held.release();
    unregister();
  }
}
