/**
 * A streaming HTTP PUT with a known Content-Length.
 *
 * `fetch` in Deno sends a ReadableStream body with chunked transfer encoding, which S3 rejects
 * (411 MissingContentLength); node:http sends the body as written with the length we declare,
 * with back-pressure, so nothing is buffered whole.
 * @module
 */
import http from "node:http";
import https from "node:https";
import type { ByteSource } from "./source.ts";

/** The server's answer to a PUT. */
export interface PutResponse {
  status: number;
  headers: Headers;
  /** The response body (S3 sends a small XML document on errors). */
  text: string;
}

/**
 * PUTs `body` to `url` with `headers` and its size as Content-Length.
 * Rejects on network errors and after `timeoutMs` without progress ("timeout"); HTTP error
 * statuses are returned, not thrown.
 */
export function streamingPut(
  url: string,
  headers: Record<string, string>,
  body: ByteSource,
  timeoutMs: number,
): Promise<PutResponse> {
  const target = new URL(url);
  const transport = target.protocol === "https:" ? https : http;
  return new Promise<PutResponse>((resolve, reject) => {
    let settled = false;
    // Resolves once the PUT is settled, so that a write waiting on a dead socket stops waiting.
    let abandon = () => {};
    const abandoned = new Promise<void>((resolve) => (abandon = resolve));
    // Our own inactivity watchdog: under Deno, node:http's request.setTimeout does not fire when the
    // request went out on a reused keep-alive socket, and destroy() may not emit "error", so a hung
    // connection would wait forever (tests/http_put_test.ts).
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const progress = () => {
      clearTimeout(watchdog);
      if (settled) return;
      watchdog = setTimeout(() => {
        const timeout = new Error("timeout");
        request.destroy(timeout);
        fail(timeout); // Deno does not always emit "error" after destroy(error)
      }, timeoutMs);
    };
    const fail = (e: unknown) => {
      clearTimeout(watchdog);
      abandon();
      if (settled) return;
      settled = true;
      reject(e);
    };
    const request = transport.request(target, {
      method: "PUT",
      headers: { ...headers, "content-length": String(body.size) },
    }, (response) => {
      const chunks: Uint8Array[] = [];
      progress();
      response.on("data", (chunk: Uint8Array) => {
        chunks.push(chunk);
        progress();
      });
      response.on("error", fail);
      response.on("end", () => {
        clearTimeout(watchdog);
        abandon();
        if (settled) return;
        settled = true;
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          if (typeof value === "string") responseHeaders.set(name, value);
        }
        resolve({
          status: response.statusCode ?? 0,
          headers: responseHeaders,
          text: new TextDecoder().decode(concat(chunks)),
        });
      });
    });
    request.on("error", fail);
    // A connection that stays silent (no progress either way) for timeoutMs is abandoned.
    progress();
    (async () => {
      try {
        for await (const chunk of body.chunks()) {
          // Wait until this chunk has been handed to the socket: the source reuses its buffer. A
          // destroyed request may never call back, so the wait also ends when the PUT is settled.
          await Promise.race([
            new Promise<void>((ok, ko) => request.write(chunk, (e) => (e ? ko(e) : ok()))),
            abandoned,
          ]);
          if (settled) return; // the server answered early (an error), or the request failed
          progress();
        }
        request.end();
      } catch (e) {
        request.destroy(e as Error);
        fail(e);
      }
    })();
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
