/**
 * Memory reclaim (src/memory_reclaim.ts, docs/design.md §3.6): after a burst of garbage, a reclaim
 * gives most of it back to the system (a full collection, then malloc_trim), and the reclaimer runs
 * one when the RSS has grown, not while it stays flat.
 */
import assert from "node:assert/strict";
import { MemoryReclaimer, reclaimMemory } from "../src/memory_reclaim.ts";

const MB = 1024 * 1024;

/** Allocates and drops about `mb` MB in 64 KiB buffers (malloc'd, below glibc's mmap threshold). */
function burst(mb: number): number {
  let junk: Uint8Array[] = [];
  for (let i = 0; i < mb * 16; i++) junk.push(new Uint8Array(64 * 1024).fill(i & 0xff));
  const n = junk.length;
  junk = [];
  return n;
}

Deno.test("a reclaim after a burst of garbage gives most of it back to the system", async () => {
  await reclaimMemory();
  const idle = Deno.memoryUsage().rss;
  burst(150);
  const grown = Deno.memoryUsage().rss;
  const r = await reclaimMemory();
  console.log(
    `RSS idle ${(idle / MB).toFixed(1)} MB, after a 150 MB burst ${(grown / MB).toFixed(1)} MB, ` +
      `after reclaim ${(r.rssAfter / MB).toFixed(1)} MB (${r.ms.toFixed(1)} ms)`,
  );
  assert.ok(grown - idle > 100 * MB, `the burst grew the RSS: ${((grown - idle) / MB).toFixed(1)} MB`);
  if (Deno.build.os === "linux") {
    assert.ok(r.rssAfter - idle < 40 * MB, `RSS back near idle: ${(r.rssAfter / MB).toFixed(1)} MB`);
  }
});

Deno.test("the reclaimer runs once at start, then when the RSS has grown or a pass asks", async () => {
  const reclaimer = new MemoryReclaimer({ checkMs: 50, growthBytes: 32 * MB });
  try {
    reclaimer.start();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(reclaimer.count, 1, "flat RSS: only the start-up reclaim");
    burst(100);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(reclaimer.count, 2, "one reclaim after the burst");
    assert.ok(reclaimer.last!.rssBefore - reclaimer.last!.rssAfter > 32 * MB, "it gave the burst back");
    // After a background pass: one reclaim for several requests in a row.
    await new Promise((r) => setTimeout(r, 1100));
    for (let i = 0; i < 3; i++) reclaimer.request(20);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(reclaimer.count, 3, "requests are coalesced into one reclaim");
  } finally {
    reclaimer.stop();
  }
});
