/**
 * S3's multi-object delete (`POST /?delete`): the request body and the reading of its answer. S3 and
 * RGW require a Content-MD5 header on this request; the answer is 200 even when some keys failed,
 * with one `<Error>` element per key that was not deleted.
 * @module
 */
import { createHash } from "node:crypto";

function encodeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/** The body of a quiet multi-object delete of `fullKeys` (keys with the store's prefix). */
export function deleteRequestXml(fullKeys: string[]): string {
  const objects = fullKeys.map((k) => `<Object><Key>${encodeXml(k)}</Key></Object>`).join("");
  return `<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>${objects}</Delete>`;
}

/** Base64 MD5 of `body` (the Content-MD5 header). */
export function contentMd5(body: string): string {
  return createHash("md5").update(body).digest("base64");
}

/** The keys a multi-object delete answer reports as failed, with S3's code and message. */
export function deleteErrors(xml: string): { key: string; code: string; message: string }[] {
  const errors = [];
  for (const match of xml.matchAll(/<Error>([\s\S]*?)<\/Error>/g)) {
    const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(match[1])?.[1] ?? "";
    errors.push({ key: field("Key"), code: field("Code"), message: field("Message") });
  }
  return errors;
}
