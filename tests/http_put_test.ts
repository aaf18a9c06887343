/**
 * The streaming PUT's timeout against a server that hangs: the first request on a keep-alive
 * connection is answered, the next one on the same connection never is. Under Deno, node:http's own
 * socket timeout does not fire for a request on a reused socket, which once left a replica waiting
 * forever behind a hung connection (the "faulty network" test in reliability_test.ts).
 */
import assert from "node:assert/strict";
import { streamingPut } from "../src/storage/http_put.ts";
import { bytesSource } from "../src/storage/source.ts";

/** A server that answers the first PUT it receives and then goes silent (connections stay open). */
function startHangingServer(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let answered = false;
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buffer = new Uint8Array(64 * 1024);
        try {
          while (true) {
            const n = await conn.read(buffer);
            if (n === null) break;
            if (!answered && new TextDecoder().decode(buffer.subarray(0, n)).startsWith("PUT ")) {
              answered = true;
              await new Promise((r) => setTimeout(r, 20)); // let the small body arrive too
              await conn.write(
                new TextEncoder().encode(
                  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
                ),
              );
            }
          }
        } catch { /* closed by the test */ }
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
    },
  };
}

for (const size of [100, 3 * 1024 * 1024]) {
  Deno.test({
    name: `streamingPut: a request hung on a reused keep-alive connection times out (${size} bytes)`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const server = startHangingServer();
      try {
        const url = (i: number) => `http://127.0.0.1:${server.port}/key-${i}`;
        const body = bytesSource(new Uint8Array(size));
        const first = await streamingPut(url(1), {}, body, 1000);
        assert.equal(first.status, 200);
        // Later requests (the first of them on the kept-alive connection) are never answered: each
        // must fail with "timeout" soon after its 1 s of silence, never wait on.
        for (const i of [2, 3]) {
          const started = Date.now();
          const outcome = await Promise.race([
            streamingPut(url(i), {}, body, 1000).then(
              (r) => `answered ${r.status}`,
              (e) => (e as Error).message,
            ),
            new Promise<string>((r) => setTimeout(() => r("still waiting after 10 s"), 10_000)),
          ]);
          assert.equal(outcome, "timeout", `request ${i}`);
          assert.ok(Date.now() - started < 5000, `request ${i} waited ${Date.now() - started} ms`);
        }
      } finally {
        server.close();
      }
    },
  });
}
