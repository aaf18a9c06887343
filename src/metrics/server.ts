/**
 * The metrics endpoint of `watch --metrics-addr HOST:PORT`: Prometheus text on /metrics and a
 * health check on /healthz (200 "ok", or 503 naming the databases that are behind).
 * @module
 */
import { usageError } from "../errors.ts";
import * as log from "../log.ts";
import type { Registry } from "./registry.ts";
import type { Health } from "./watch_metrics.ts";

/** A running metrics server. */
export interface MetricsServer {
  /** e.g. `http://127.0.0.1:9090` */
  url: string;
  close(): Promise<void>;
}

/** Serves `registry` and `health` on `address` (hostname defaults to 127.0.0.1 in the parser). */
export function serveMetrics(
  address: { hostname: string; port: number },
  registry: Registry,
  health: () => Health,
): MetricsServer {
  let server: Deno.HttpServer;
  const handler = (request: Request): Response => {
    const path = new URL(request.url).pathname;
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405 });
    }
    if (path === "/metrics") {
      return new Response(registry.expose(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    }
    if (path === "/healthz") {
      const verdict = health();
      const body = verdict.ok ? "ok\n" : `behind: ${verdict.behind.join(", ")}\n`;
      return new Response(body, {
        status: verdict.ok ? 200 : 503,
        headers: { "content-type": "text/plain" },
      });
    }
    return new Response("not found: try /metrics or /healthz\n", { status: 404 });
  };
  try {
    server = Deno.serve({ hostname: address.hostname, port: address.port, onListen: () => {} }, handler);
  } catch (e) {
    throw usageError(`cannot serve metrics on ${address.hostname}:${address.port}: ${(e as Error).message}`);
  }
  const { hostname, port } = server.addr as Deno.NetAddr;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const url = `http://${host}:${port}`;
  log.info(`metrics on ${url}/metrics, health on ${url}/healthz`);
  return { url, close: () => server.shutdown() };
}
