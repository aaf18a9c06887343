/**
 * Idempotent uploads (issue #8, defect 1): when a segment PUT reaches the store but its answer is
 * lost, the retry (in the same round or a later one) must write the same key with the same bytes,
 * never a second object with the same index. A proxy lets every request reach RGW but cuts each
 * answer, for longer than a call's retry window, while a separate writer commits steadily and
 * scheduled snapshots fall due.
 */
import assert from "node:assert/strict";
import { startFaultProxy } from "./fixtures/fault_proxy.ts";
import {
  filesEqual,
  freshBackend,
  listObjects,
  objectMetadata,
  s3Settings,
  sleep,
  sqlite3,
  startWatch,
  tempDir,
  walsync,
  WRITER,
} from "./helpers.ts";

const noSanitizers = { sanitizeOps: false, sanitizeResources: false };

function proxyTarget() {
  const url = new URL(s3Settings().endpoint);
  return { hostname: url.hostname, port: Number(url.port || 80) };
}

Deno.test({
  name:
    "[s3] answers lost for a while (PUTs land, the client sees resets): no index stored twice, exact restore",
  ...noSanitizers,
  fn: async () => {
    const proxy = startFaultProxy(proxyTarget());
    try {
      const backend = await freshBackend("s3");
      const dir = await tempDir();
      const db = `${dir}/lost.db`;
      await new Deno.Command("python3", { args: [WRITER, "fill", db, "50"] }).output();
      const env = {
        ...backend.env,
        AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${proxy.port}`,
        WALSYNC_S3_TIMEOUT_MS: "2000",
      };
      const watch = await startWatch(
        [db, "-b", backend.url, "--sync-interval", "0.5", "--snapshot-interval", "2"],
        env,
      );
      const writing = new Deno.Command("python3", {
        args: [WRITER, "steady", db, "24", "10"],
        stdout: "piped",
      }).output();
      await sleep(4000);
      // Longer than one call's retries (about 8 s at most): whole sync rounds fail after their PUT landed.
      proxy.settings.dropResponses = true;
      await sleep(12_000);
      proxy.settings.dropResponses = false;
      const written = await writing;
      assert.equal(written.code, 0);
      await sleep(3000); // the backlog is shipped
      const { code, stderr } = await watch.stop("SIGINT");
      console.log(`proxy: ${JSON.stringify(proxy.stats)}`);
      assert.equal(code, 0, stderr);
      assert.ok(proxy.stats.droppedResponses > 0, "answers must actually have been cut");
      assert.match(stderr, /upload failed, will retry/, "a whole round must have failed");
      assert.doesNotMatch(stderr, /starting generation 2/);

      // Every stored segment, through a second client: each index once, 0..n-1.
      const segments = (await listObjects(backend)).filter((o) => o.key.includes("/wal/"));
      const indexes: number[] = [];
      for (const { key } of segments) indexes.push(Number((await objectMetadata(backend, key)).index));
      const sorted = [...indexes].sort((a, b) => a - b);
      console.log(`${segments.length} segments stored`);
      assert.deepEqual(
        sorted,
        sorted.map((_, i) => i),
        `segment indexes must be 0..n-1, each once: ${sorted}`,
      );

      // Snapshots too: a retried snapshot reuses its key, so no two hold the same place in the chain.
      const snapshots = (await listObjects(backend)).filter((o) => o.key.includes("/snapshots/"));
      const places: string[] = [];
      for (const { key } of snapshots) places.push((await objectMetadata(backend, key))["segments-before"]);
      console.log(`${snapshots.length} snapshots stored, after segments ${places.join(", ")}`);
      assert.equal(new Set(places).size, places.length, `two snapshots at the same place: ${places}`);

      const verify = await walsync(["verify", "-b", backend.url], { env: backend.env });
      assert.equal(verify.code, 0, `verify must pass:\n${verify.stdout}${verify.stderr}`);
      const out = `${await tempDir()}/restored.db`;
      const r = await walsync(["restore", "lost", "-o", out, "-b", backend.url], { env: backend.env });
      assert.equal(r.code, 0, r.stderr);
      await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
      assert.ok(await filesEqual(out, db), "the latest restore must equal the source byte for byte");
    } finally {
      await proxy.close();
    }
  },
});
