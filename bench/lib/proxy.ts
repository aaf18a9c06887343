/**
 * A counting HTTP proxy for S3 traffic: walsync talks to it (`--endpoint http://127.0.0.1:<port>`),
 * it forwards every request to the real server and records one event per request.
 *
 * - Bodies are streamed both ways (node:http pipes, with back-pressure); nothing is buffered.
 * - Headers are forwarded unchanged, Host included. SigV4 signs the Host header: walsync signs for
 *   the proxy's host:port, and RGW checks the signature against the Host header it receives, which
 *   is that same value, so requests stay valid (RGW does not require Host to name itself).
 * - Requests are classified as S3 operations: PUT, GET (an object), LIST (GET on the bucket),
 *   HEAD, DELETE, POST (multipart, batch delete).
 * @module
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { nowMs } from "./proc.ts";

/** The S3 operation of a request. */
export type S3Operation = "PUT" | "GET" | "LIST" | "HEAD" | "DELETE" | "POST" | "OTHER";

/** One forwarded request. */
export interface RequestEvent {
  /** Wall-clock ms when the response was complete. */
  time: number;
  op: S3Operation;
  /** Object key (without the bucket), or the LIST prefix. */
  key: string;
  status: number;
  /** Request body bytes (PUT/POST). */
  bytesIn: number;
  /** Response body bytes. */
  bytesOut: number;
}

/** Classifies a request from its method and URL (path-style: /bucket/key?query). */
export function classify(method: string, url: string): { op: S3Operation; key: string } {
  const u = new URL(url, "http://proxy");
  const parts = u.pathname.split("/").slice(2); // drop "" and the bucket
  const key = decodeURIComponent(parts.join("/"));
  if (method === "GET" && key === "") return { op: "LIST", key: u.searchParams.get("prefix") ?? "" };
  const known: S3Operation[] = ["PUT", "GET", "HEAD", "DELETE", "POST"];
  return { op: known.includes(method as S3Operation) ? method as S3Operation : "OTHER", key };
}

/** A running counting proxy. */
export class CountingProxy {
  readonly events: RequestEvent[] = [];
  readonly #server: http.Server;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  port = 0;

  private constructor(readonly upstream: URL) {
    this.#server = http.createServer((req, res) => this.#forward(req, res));
  }

  /** Starts a proxy on a free port of 127.0.0.1 forwarding to `upstream` (http only). */
  static async start(upstream: string): Promise<CountingProxy> {
    const proxy = new CountingProxy(new URL(upstream));
    if (proxy.upstream.protocol !== "http:") {
      throw new Error(`the counting proxy forwards to http only: ${upstream}`);
    }
    await new Promise<void>((resolve) => proxy.#server.listen(0, "127.0.0.1", resolve));
    proxy.port = (proxy.#server.address() as AddressInfo).port;
    return proxy;
  }

  /** The endpoint to give walsync. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { op, key } = classify(req.method ?? "", req.url ?? "/");
    let bytesIn = 0;
    let bytesOut = 0;
    const upstream = http.request({
      host: this.upstream.hostname,
      port: this.upstream.port || 80,
      method: req.method,
      path: req.url,
      headers: req.headers, // Host included: the signature covers it
      agent: this.#agent,
    }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.on("data", (chunk: Uint8Array) => bytesOut += chunk.byteLength);
      upRes.on("end", () => {
        this.events.push({ time: nowMs(), op, key, status: upRes.statusCode ?? 0, bytesIn, bytesOut });
      });
      upRes.pipe(res);
    });
    upstream.on("error", (e) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(e));
    });
    req.on("data", (chunk: Uint8Array) => bytesIn += chunk.byteLength);
    req.pipe(upstream);
  }

  /** Stops listening and closes idle upstream connections. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#agent.destroy();
  }
}

/** Counts of `events` by operation. */
export function countByOp(events: RequestEvent[]): Record<S3Operation, number> {
  const counts: Record<S3Operation, number> = {
    PUT: 0,
    GET: 0,
    LIST: 0,
    HEAD: 0,
    DELETE: 0,
    POST: 0,
    OTHER: 0,
  };
  for (const e of events) counts[e.op]++;
  return counts;
}
