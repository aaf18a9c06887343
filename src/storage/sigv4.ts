/**
 * AWS Signature Version 4: the shared steps (encoding, derived key, signature), and header signing
 * for the few AWS API calls walsync makes itself (STS AssumeRole, see src/storage/assume_role.ts).
 * S3 URLs are pre-signed in src/storage/presign.ts. Follows AWS's "Create a signed AWS API request"
 * steps: canonical request, string to sign, derived key, Authorization header.
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

/** The signature algorithm's name, as it appears in requests. */
export const ALGORITHM = "AWS4-HMAC-SHA256";

/** SHA-256 of `data`, hex. */
export const sha256Hex = (data: string): string => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

/** RFC 3986 encoding, as SigV4 wants it (slashes kept when asked: an object key's path). */
export function uriEncode(text: string, keepSlashes = false): string {
  const encoded = encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return keepSlashes ? encoded.replaceAll("%2F", "/") : encoded;
}

/** The key derived for one day, region and service (AWS's "derive a signing key" step). */
export function deriveSigningKey(secret: string, day: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), "aws4_request");
}

/** HMAC-SHA256 of `stringToSign` with a derived key, hex: the signature. */
export function signature(signingKey: Buffer, stringToSign: string): string {
  return createHmac("sha256", signingKey).update(stringToSign).digest("hex");
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
  const payloadHash = sha256Hex(request.body);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  headers["x-amz-date"] = amzDate;
  headers["x-amz-content-sha256"] ??= payloadHash;
  if (key.sessionToken) headers["x-amz-security-token"] = key.sessionToken;
  const signed: Record<string, string> = { ...headers, host: request.url.host };
  const names = Object.keys(signed).sort();
  const canonicalHeaders = names.map((n) => `${n}:${signed[n].trim().replace(/\s+/g, " ")}\n`).join("");
  const query = [...request.url.searchParams].map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).sort().join(
    "&",
  );
  const canonical = [
    request.method,
    request.url.pathname || "/",
    query,
    canonicalHeaders,
    names.join(";"),
    headers["x-amz-content-sha256"],
  ].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join("\n");
  const signingKey = deriveSigningKey(key.secretAccessKey, day, region, service);
  headers.authorization = `${ALGORITHM} Credential=${key.accessKeyId}/${scope}, ` +
    `SignedHeaders=${names.join(";")}, Signature=${signature(signingKey, stringToSign)}`;
  return headers;
}
