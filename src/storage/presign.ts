/**
 * Pre-signed S3 URLs (AWS Signature Version 4, query-string form), computed synchronously with
 * node:crypto and a signing key derived once per day. It produces exactly the URLs of
 * s3-lite-client's `getPresignedUrl` (tests/presign_unit_test.ts compares them byte for byte), which
 * derives the key anew for every request through WebCrypto's asynchronous HMAC: five key imports and
 * five HMACs per request, measured as ~40 % of the main thread's work when restoring small segments.
 * @module
 */
import { ALGORITHM, deriveSigningKey, sha256Hex, signature, uriEncode } from "./sigv4.ts";

/** Headers that are never signed (as s3-lite-client). */
const UNSIGNED_HEADERS = ["authorization", "content-length", "content-type", "user-agent"];
/** A header name any HTTP stack takes as is; printable ASCII (what the fast path handles). */
const HEADER_NAME = /^[A-Za-z0-9-]+$/;
const PRINTABLE = /^[\x20-\x7e]*$/;

/** Where and as whom requests go: the S3 client's own settings. */
export interface PresignTarget {
  /** "http:" or "https:". */
  protocol: string;
  /** Host name, with the port when it is not the scheme's default. */
  host: string;
  pathStyle: boolean;
  /** Path before the bucket (path style only; "" for none). */
  pathPrefix: string;
  region: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  sessionToken?: string;
}

/** What one URL is for. */
export interface PresignRequest {
  method: "GET" | "HEAD" | "PUT" | "DELETE";
  /** The object key (with the backup's prefix). */
  objectName: string;
  expirySeconds: number;
  /** Headers the request will carry that the signature covers (e.g. x-amz-meta-*, If-Match). */
  extraHeaders?: Record<string, string>;
  /** Query parameters (e.g. partNumber and uploadId). */
  parameters?: Record<string, string>;
  /** The signing time (default: now). */
  date?: Date;
}

/**
 * Whether `request` has nothing the general path treats specially: no "?" in the object's path,
 * printable ASCII header names (unique without case) and values, printable ASCII parameters that do
 * not override the signature's own. Walsync's requests always are; the rest takes the general path.
 */
export function plainRequest(t: PresignTarget, request: PresignRequest): boolean {
  if (request.objectName.includes("?") || t.pathPrefix.includes("?") || t.bucket.includes("?")) return false;
  const names = new Set<string>(["host"]);
  for (const [name, value] of Object.entries(request.extraHeaders ?? {})) {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name) || !PRINTABLE.test(value) || names.has(lower)) return false;
    names.add(lower);
  }
  for (const [key, value] of Object.entries(request.parameters ?? {})) {
    if (!PRINTABLE.test(key) || !PRINTABLE.test(value) || key.startsWith("X-Amz-")) return false;
  }
  return true;
}

/** Signs URLs for one S3 client's settings; the derived signing key is kept for its day. */
export class Presigner {
  #keyDay = "";
  #key: Buffer | null = null;

  constructor(readonly target: PresignTarget) {}

  /** The pre-signed URL of `request`. */
  url(request: PresignRequest): string {
    return plainRequest(this.target, request) ? this.#fastUrl(request) : this.#generalUrl(request);
  }

  /**
   * The same URL as {@link #generalUrl}, built from strings: no Headers or URLSearchParams objects,
   * no query string serialized, parsed and serialized again (they were ~15 % of a small-segment
   * restore's main-thread time). tests/presign_unit_test.ts compares both with s3-lite-client.
   */
  #fastUrl(request: PresignRequest): string {
    const t = this.target;
    const host = t.pathStyle ? t.host : `${t.bucket}.${t.host}`;
    const headers = new Map<string, string>([["host", host]]);
    for (const [name, value] of Object.entries(request.extraHeaders ?? {})) {
      headers.set(name.toLowerCase(), value.replace(/^ +| +$/g, ""));
    }
    const signed = [...headers.keys()].filter((key) => !UNSIGNED_HEADERS.includes(key)).sort();
    const resource = t.pathStyle
      ? `${t.pathPrefix}/${t.bucket}/${request.objectName}`
      : `/${request.objectName}`;
    const date = longDate(request.date ?? new Date());
    const day = date.slice(0, 8);
    const scope = `${day}/${t.region}/s3/aws4_request`;
    const pairs: [string, string][] = Object.entries(request.parameters ?? {});
    pairs.push(
      ["X-Amz-Algorithm", ALGORITHM],
      ["X-Amz-Credential", `${t.accessKey}/${scope}`],
      ["X-Amz-Date", date],
      ["X-Amz-Expires", String(request.expirySeconds)],
      ["X-Amz-SignedHeaders", signed.join(";")],
    );
    if (t.sessionToken) pairs.push(["X-Amz-Security-Token", t.sessionToken]);
    const queryString = pairs.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join("&");
    const canonical = [
      request.method,
      uriEncode(resource, true),
      pairs.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).sort().join("&"),
      signed.map((key) => `${key}:${headers.get(key)!.replace(/ +/g, " ")}\n`).join(""),
      signed.join(";"),
      "UNSIGNED-PAYLOAD",
    ].join("\n");
    const stringToSign = [ALGORITHM, date, scope, sha256Hex(canonical)].join("\n");
    const sig = signature(this.#signingKey(day), stringToSign);
    const encodedPath = resource.split("/").map((part) => encodeURIComponent(part)).join("/");
    return `${t.protocol}//${host}${encodedPath}?${queryString}&X-Amz-Signature=${sig}`;
  }

  /** The URL as s3-lite-client builds it, quirks included (a "?" in the key splits the path). */
  #generalUrl(request: PresignRequest): string {
    const t = this.target;
    const host = t.pathStyle ? t.host : `${t.bucket}.${t.host}`;
    const headers = new Headers(request.extraHeaders);
    headers.set("host", host);
    const query = request.parameters
      ? new URLSearchParams(request.parameters).toString().replaceAll("+", "%20")
      : "";
    const base = t.pathStyle ? `${t.pathPrefix}/${t.bucket}/${request.objectName}` : `/${request.objectName}`;
    const path = base + (query ? `?${query}` : "");

    const resource = path.split("?")[0];
    const date = longDate(request.date ?? new Date());
    const day = date.slice(0, 8);
    const scope = `${day}/${t.region}/s3/aws4_request`;
    const signed = [...headers.keys()].filter((key) => !UNSIGNED_HEADERS.includes(key));
    const search = new URLSearchParams(path.split("?")[1]);
    search.set("X-Amz-Algorithm", ALGORITHM);
    search.set("X-Amz-Credential", `${t.accessKey}/${scope}`);
    search.set("X-Amz-Date", date);
    search.set("X-Amz-Expires", String(request.expirySeconds));
    search.set("X-Amz-SignedHeaders", signed.join(";").toLowerCase());
    if (t.sessionToken) search.set("X-Amz-Security-Token", t.sessionToken);
    const queryString = search.toString().replaceAll("+", "%20");
    const canonical = canonicalRequest(request.method, `${resource}?${queryString}`, headers, signed);
    const stringToSign = [ALGORITHM, date, scope, sha256Hex(canonical)].join("\n");
    const sig = signature(this.#signingKey(day), stringToSign);
    const encodedPath = resource.split("/").map((part) => encodeURIComponent(part)).join("/");
    return `${t.protocol}//${headers.get("host")}${encodedPath}?${queryString}&X-Amz-Signature=${sig}`;
  }

  #signingKey(day: string): Buffer {
    if (this.#key && this.#keyDay === day) return this.#key;
    this.#key = deriveSigningKey(this.target.secretKey, day, this.target.region, "s3");
    this.#keyDay = day;
    return this.#key;
  }
}

/** application/x-www-form-urlencoded, as URLSearchParams writes it, with "%20" for spaces. */
function formEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** YYYYMMDDTHHMMSSZ. */
function longDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").slice(0, 15) + "Z";
}

/** The canonical request of an UNSIGNED-PAYLOAD pre-signed URL. */
function canonicalRequest(method: string, path: string, headers: Headers, signed: string[]): string {
  const lines = signed.map((key) => `${key.toLowerCase()}:${`${headers.get(key)}`.replace(/ +/g, " ")}`);
  const query = (path.split("?")[1] ?? "")
    .split("&")
    .map((pair) => {
      const [key, value] = pair.split("=", 2);
      return `${uriEncode(decodeURIComponent(key))}=${uriEncode(decodeURIComponent(value || ""))}`;
    })
    .sort()
    .join("&");
  return [
    method.toUpperCase(),
    uriEncode(path.split("?")[0], true),
    query,
    lines.join("\n") + "\n",
    signed.join(";").toLowerCase(),
    "UNSIGNED-PAYLOAD",
  ].join("\n");
}
