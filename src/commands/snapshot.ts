/**
 * `walsync snapshot`: one consistent image of a live database, uploaded as the first object of a
 * new generation and confirmed by a HEAD.
 * @module
 */
import { latestTimeOf, readHistory } from "../log/history.ts";
import { defaultName, nextTime, snapshotKey, validateName } from "../layout.ts";
import { usageError } from "../errors.ts";
import * as log from "../log.ts";
import { encodeSnapshotMeta } from "../metadata.ts";
import { startProgress } from "../progress.ts";
import { onInterrupt } from "../shutdown.ts";
import { openConsistentImage } from "../sqlite/image.ts";
import { realDatabasePath } from "../sqlite/real_path.ts";
import type { Store } from "../storage/store.ts";
import { uploadVerified } from "../storage/upload.ts";
import { cleanUploadLeftovers } from "../storage/file.ts";

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

/** The name of `dbPath` in the backup by default, or a usage error that says how to give one. */
function defaultNameOf(dbPath: string): string {
  try {
    return validateName(defaultName(dbPath));
  } catch (e) {
    throw usageError(`${(e as Error).message}; give the database a name with --name NAME`);
  }
}

/** Takes a snapshot of `dbPath` into `store` as a new generation of `name`. */
export async function snapshotCommand(store: Store, dbPath: string, name?: string): Promise<SnapshotResult> {
  const dbName = name === undefined ? defaultNameOf(dbPath) : validateName(name);
  // SQLite reads the real file (links resolved) and keeps its WAL beside it; the name stays the user's.
  const realPath = realDatabasePath(dbPath);
  const held = await openConsistentImage(realPath);
  const progress = startProgress(`snapshot "${dbName}"`, held.image.size);
  const unregister = onInterrupt(() => held.release());
  try {
    const cleaned = await cleanUploadLeftovers(store, `${dbName}/`);
    if (cleaned) log.info(`${dbName}: removed ${cleaned} leftover(s) of interrupted uploads`);
    const history = await readHistory(store, dbName);
    const generation = (history?.generations.at(-1)?.generation ?? 0) + 1;
    const time = nextTime(latestTimeOf(history));
    const key = snapshotKey(dbName, generation, time);
    const { image } = held;
    log.debug(`uploading the snapshot of ${dbPath} to ${store.url}/${key}`);
    // Stored as is, the image is read twice (checksums, then upload). Encoded, it is read once (into
    // a compressed/encrypted temp file) and that file is uploaded: counted by the wrapped store.
    const encoded = store.codec !== undefined &&
      (store.codec.compression !== "none" || store.codec.key !== null);
    const uploaded = await uploadVerified(
      encoded ? progress.wrap(store, "upload") : store,
      key,
      progress.source(image, encoded ? ["compress"] : ["checksum", "upload"]),
      encodeSnapshotMeta({
        pageSize: image.pageSize,
        pageCount: image.pageCount,
        position: image.position,
        segmentsBefore: 0,
      }),
    );
    // Logged once stored and confirmed, never before: a failed upload must not look like a success.
    log.info(`snapshot of ${dbPath} (${image.size} bytes, ${image.mode} mode) stored as ${store.url}/${key}`);
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
    progress.finish();
  }
}
