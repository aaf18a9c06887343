/**
 * Metrics and health of `watch --metrics-addr` (issue #12): the Prometheus text format, and a live
 * scrape during a writer and during a store outage (through the fault proxy: the shared RGW keeps
 * running): lag grows, failures count, /healthz goes 503 and back to 200, nothing is lost.
 */
import assert from "node:assert/strict";
import { Registry } from "../src/metrics/registry.ts";
import { WatchMetrics } from "../src/metrics/watch_metrics.ts";
import type { Replica } from "../src/watch/replica.ts";
import { startFaultProxy } from "./fixtures/fault_proxy.ts";
import {
  cleanup,
  filesEqual,
  freshBackend,
  keyTime,
  listKeys,
  s3Settings,
  sleep,
  spawnLines,
  sqlite3,
  startWatch,
  tempDir,
  walsync,
  WRITER,
  writer,
} from "./helpers.ts";

Deno.test("metrics registry: Prometheus text format with labels, escaping, collectors", () => {
  const registry = new Registry();
  const requests = registry.counter("walsync_store_requests_total", "Requests.");
  requests.inc({ method: "PUT", outcome: "ok" });
  requests.inc({ outcome: "ok", method: "PUT" }, 2);
  requests.inc({ method: "GET", outcome: "error" });
  const gauge = registry.gauge("walsync_x", "A gauge.");
  let pulls = 0;
  registry.onCollect(() => gauge.set({ database: 'we"ird\\name' }, ++pulls));
  assert.equal(
    registry.expose(),
    "# HELP walsync_store_requests_total Requests.\n# TYPE walsync_store_requests_total counter\n" +
      'walsync_store_requests_total{method="PUT",outcome="ok"} 3\n' +
      'walsync_store_requests_total{method="GET",outcome="error"} 1\n' +
      "# HELP walsync_x A gauge.\n# TYPE walsync_x gauge\n" +
      'walsync_x{database="we\\"ird\\\\name"} 1\n',
  );
  assert.match(registry.expose(), /walsync_x\{[^}]*\} 2\n/, "collectors run at every scrape");
});

Deno.test("health: behind after 10 sync intervals without a successful round; a backoff round is no success", () => {
  const metrics = new WatchMetrics(1000, new Registry());
  const replica = {
    name: "app",
    path: "/nonexistent/app.db",
    failure: null,
    generation: 1,
    stats: {},
  } as unknown as Replica;
  metrics.watch([replica]);
  const t0 = Date.now();
  metrics.synced(replica, undefined, t0);
  // An idle database is looked at once per backstop period (5 to 6 intervals): still healthy.
  assert.deepEqual(metrics.health(t0 + 9999), { ok: true, behind: [] });
  metrics.synced(replica, new Error("store down"), t0 + 1000);
  // The next rounds return at once while the replica backs off: still behind.
  metrics.synced(replica, undefined, t0 + 2000);
  const behind = metrics.health(t0 + 11_000);
  assert.equal(behind.ok, false);
  assert.match(behind.behind[0], /^app \(11\.0 s since its last sync: store down\)$/);
  // Once the backoff is surely over, a round without error is a real one.
  metrics.synced(replica, undefined, t0 + 13_000);
  assert.deepEqual(metrics.health(t0 + 13_500), { ok: true, behind: [] });
});

Deno.test("metrics: a database that is no longer watched loses its series", () => {
  const registry = new Registry();
  const metrics = new WatchMetrics(1000, registry);
  const stats = { segments: 1, snapshots: 1, generationsStarted: 1, checkpoints: 0, failedUploads: 0 };
  const replica = (name: string) => ({
    name,
    path: `/nonexistent/${name}.db`,
    failure: null,
    generation: 1,
    stats,
  });
  const replicas = [replica("a"), replica("b")] as unknown as Replica[];
  metrics.watch(replicas);
  metrics.synced(replicas[1], new Error("x"));
  assert.match(registry.expose(), /walsync_segments_total\{database="b"\} 1/);
  replicas.pop();
  const text = registry.expose();
  assert.doesNotMatch(text, /database="b"/);
  assert.match(text, /walsync_segments_total\{database="a"\} 1/);
  assert.match(text, /walsync_databases_watched 1\n/);
});

/** One scrape: the value of the series `name{labels}` (labels as written in the exposition), or null. */
function sample(text: string, series: string): number | null {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

async function scrape(base: string, path = "/metrics"): Promise<{ status: number; text: string }> {
  const response = await fetch(base + path);
  return { status: response.status, text: await response.text() };
}

/** Polls until `check` holds (true) or `timeoutMs` passes (false). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

Deno.test({
  name: "[s3] /metrics and /healthz during a live writer and during an outage (lag grows, 503, then 200)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const backend = await freshBackend("s3");
    const dir = await tempDir();
    const db = `${dir}/app.db`;
    await writer("fill", db, "10");
    const url = new URL(s3Settings().endpoint);
    const proxy = startFaultProxy({ hostname: url.hostname, port: Number(url.port || 80) });
    const w = await startWatch(
      [
        db,
        "-b",
        backend.url,
        "--endpoint",
        `http://127.0.0.1:${proxy.port}`,
        "--sync-interval",
        "200ms",
        "--metrics-addr",
        ":0",
      ],
      backend.env,
    );
    try {
      const base = /metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(w.stderr())?.[1];
      assert.ok(base, `bound to 127.0.0.1 when no host is given:\n${w.stderr()}`);
      const app = `{database="app"}`;
      const writing = spawnLines("python3", [WRITER, "steady", db, "12", "20"]);

      // Live: objects shipped, requests counted, healthy.
      assert.ok(
        await eventually(async () =>
          (sample((await scrape(base)).text, `walsync_segments_total${app}`) ?? 0) >= 3
        ),
        "segments are shipped",
      );
      let { text } = await scrape(base);
      assert.ok(sample(text, `walsync_shipped_objects_total${app}`)! >= 4, text);
      assert.ok(sample(text, `walsync_shipped_bytes_total${app}`)! > 0);
      assert.equal(sample(text, `walsync_generation${app}`), 1);
      assert.equal(sample(text, `walsync_replication_lag_seconds${app}`), 0);
      assert.ok(sample(text, `walsync_wal_size_bytes${app}`)! > 0);
      assert.ok(sample(text, `walsync_snapshot_age_seconds${app}`)! >= 0);
      assert.ok(sample(text, `walsync_store_requests_total{method="PUT",outcome="ok"}`)! > 0);
      assert.ok(sample(text, "walsync_resident_memory_bytes")! > 10_000_000);
      assert.equal(sample(text, "walsync_databases_watched"), 1);
      assert.deepEqual(await scrape(base, "/healthz"), { status: 200, text: "ok\n" });

      // Outage: the proxy refuses connections; the writer goes on.
      proxy.settings.down = true;
      proxy.cutAll();
      let health = { status: 0, text: "" };
      assert.ok(
        await eventually(async () => (health = await scrape(base, "/healthz")).status === 503),
        "healthz must turn 503",
      );
      assert.match(health.text, /^behind: app \([\d.]+ s since its last sync/);
      assert.ok(
        await eventually(async () =>
          (sample((await scrape(base)).text, `walsync_replication_lag_seconds${app}`) ?? 0) > 0
        ),
        "lag must show once a round failed",
      );
      const lag1 = sample((await scrape(base)).text, `walsync_replication_lag_seconds${app}`)!;
      await sleep(1500);
      text = (await scrape(base)).text;
      assert.ok(sample(text, `walsync_replication_lag_seconds${app}`)! > lag1, "lag grows during the outage");
      assert.ok(sample(text, `walsync_store_requests_total{method="PUT",outcome="error"}`)! > 0, text);
      assert.ok(
        (sample(text, `walsync_sync_failures_total{database="app",kind="transient"}`) ?? 0) > 0,
        text,
      );

      // Recovery: healthy again, lag back to 0.
      proxy.settings.down = false;
      assert.ok(
        await eventually(async () => (await scrape(base, "/healthz")).status === 200, 60_000),
        `healthz must return to 200:\n${(await scrape(base, "/healthz")).text}`,
      );
      assert.equal(sample((await scrape(base)).text, `walsync_replication_lag_seconds${app}`), 0);
      assert.equal((await scrape(base, "/nope")).status, 404);
      await writing.done;
    } finally {
      const { code, stderr } = await w.stop("SIGINT");
      await proxy.close();
      assert.equal(code, 0, stderr);
    }
    // Nothing was lost.
    const out = `${dir}/restored.db`;
    const r = await walsync(["restore", "app", "-o", out, "-b", backend.url], { env: backend.env });
    assert.equal(r.code, 0, r.stderr);
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, db), "the restore must equal the source");
    await cleanup(dir, backend);
  },
});

Deno.test("--metrics-addr: a bad address is a usage error; the metrics port in use is reported", async () => {
  const backend = await freshBackend("file");
  const dir = await tempDir();
  await writer("fill", `${dir}/app.db`, "1");
  const bad = await walsync(["watch", `${dir}/app.db`, "-b", backend.url, "--metrics-addr", "localhost"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid --metrics-addr "localhost": expected HOST:PORT or :PORT/);
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (busy.addr as Deno.NetAddr).port;
  const taken = await walsync([
    "watch",
    `${dir}/app.db`,
    "-b",
    backend.url,
    "--metrics-addr",
    `127.0.0.1:${port}`,
  ]);
  busy.close();
  assert.equal(taken.code, 2, taken.stderr);
  assert.match(taken.stderr, new RegExp(`cannot serve metrics on 127\\.0\\.0\\.1:${port}: `));
  await cleanup(dir, backend);
});

Deno.test("list shows the age of each database's newest object, a segment too (human and --json newestAgeSeconds)", async () => {
  const backend = await freshBackend("file");
  const dir = await tempDir();
  for (const name of ["stale", "live"]) await writer("fill", `${dir}/${name}.db`, "5");
  const snap = await walsync(["snapshot", `${dir}/stale.db`, "-b", backend.url]);
  assert.equal(snap.code, 0, snap.stderr);
  // live.db: a snapshot when watch starts, then, 2.5 s later, a segment: the segment is its newest object.
  const w = await startWatch([`${dir}/live.db`, "-b", backend.url, "--sync-interval", "200ms"], {});
  await sleep(2500);
  await writer("fill", `${dir}/live.db`, "5");
  const deadline = Date.now() + 10_000;
  while (!(await listKeys(backend)).some((k) => k.startsWith("live/") && k.includes("/wal/"))) {
    assert.ok(Date.now() < deadline, `no segment for live.db:\n${w.stderr()}`);
    await sleep(50);
  }
  const { code, stderr } = await w.stop("SIGINT");
  assert.equal(code, 0, stderr);
  await sleep(1000);
  const json = await walsync(["list", "-b", backend.url, "--json"]);
  const ages = Object.fromEntries(
    JSON.parse(json.stdout).map((
      d: { name: string; newestAgeSeconds: number },
    ) => [d.name, d.newestAgeSeconds]),
  );
  const now = Date.now();
  const liveSnapshot = Math.max(
    ...(await listKeys(backend)).filter((k) => /^live\/.*\/snapshots\/.*\.db$/.test(k)).map(keyTime),
  );
  assert.ok(ages.stale >= 3 && ages.stale < 60, json.stdout);
  assert.ok(ages.live <= 4, `live.db's newest object is its segment: ${json.stdout}`);
  assert.ok(ages.live < (now - liveSnapshot) / 1000 - 1, "younger than its snapshot");
  const human = await walsync(["list", "-b", backend.url]);
  assert.match(human.stdout, /NEWEST\n/);
  const shown = (name: string) => Number(new RegExp(`^${name} .* (\\d+)s ago$`, "m").exec(human.stdout)?.[1]);
  assert.ok(shown("stale") >= ages.stale && shown("stale") <= ages.stale + 3, human.stdout);
  assert.ok(shown("live") <= ages.live + 3, human.stdout);
  await cleanup(dir, backend);
});
