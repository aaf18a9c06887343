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

/** Signs URLs for one S3 client's settings; the derived signing key is kept for its day. */
export class Presigner {
  #keyDay = "";
  #key: Buffer | null = null;

  constructor(readonly target: PresignTarget) {}

  /** The pre-signed URL of `request`. */
  url(request: PresignRequest): string {
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
