/**
 * AWS Signature Version 4 for the few AWS API calls walsync makes itself (STS AssumeRole, see
 * src/storage/assume_role.ts); S3 requests are signed by s3-lite-client. Follows AWS's "Create a
 * signed AWS API request" steps: canonical request, string to sign, derived key, Authorization header.
 * @module
 */
import { createHash, createHmac } from "node:crypto";

/** The key that signs: an access key, its secret and, for temporary credentials, the session token. */
export interface SigningKey {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** A request to sign: the headers to send besides `host` (which comes from the URL). */
export interface UnsignedRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string;
}

const hex = (data: string) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

/** RFC 3986 encoding, as SigV4 wants it for query strings. */
function encode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * Signs `request` for `service` in `region` at `now`: returns the headers to send (the request's,
 * plus `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` for temporary keys, and
 * `authorization`; `host` is signed but left to fetch).
 */
export function signV4(
  request: UnsignedRequest,
  key: SigningKey,
  region: string,
  service: string,
  now: Date = new Date(),
): Record<string, string> {
  const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const payloadHash = hex(request.body);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  headers["x-amz-date"] = amzDate;
  headers["x-amz-content-sha256"] ??= payloadHash;
  if (key.sessionToken) headers["x-amz-security-token"] = key.sessionToken;
  const signed: Record<string, string> = { ...headers, host: request.url.host };
  const names = Object.keys(signed).sort();
  const canonicalHeaders = names.map((n) => `${n}:${signed[n].trim().replace(/\s+/g, " ")}\n`).join("");
  const query = [...request.url.searchParams].map(([k, v]) => `${encode(k)}=${encode(v)}`).sort().join("&");
  const canonical = [
    request.method,
    request.url.pathname || "/",
    query,
    canonicalHeaders,
    names.join(";"),
    headers["x-amz-content-sha256"],
  ].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(canonical)].join("\n");
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${key.secretAccessKey}`, day), region), service),
    "aws4_request",
  );
  const signature = createHmac("sha256", signingKey).update(stringToSign).digest("hex");
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${key.accessKeyId}/${scope}, ` +
    `SignedHeaders=${names.join(";")}, Signature=${signature}`;
  return headers;
}
