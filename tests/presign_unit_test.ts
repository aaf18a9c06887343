/**
 * walsync's own SigV4 pre-signing (src/storage/presign.ts) gives byte-for-byte the URLs of
 * s3-lite-client's `getPresignedUrl`, which the S3 servers in the end-to-end tests accept, over
 * methods, keys with characters that need encoding, signed extra headers, query parameters,
 * temporary credentials, path-style and virtual-hosted addressing, ports and days (on both of its
 * paths: string-built for plain requests, the general one otherwise); and the signing
 * key kept for a day is not reused on the next.
 */
import assert from "node:assert/strict";
import { S3Client } from "@bradenmacdonald/s3-lite-client";
import { plainRequest, Presigner, type PresignRequest } from "../src/storage/presign.ts";

const CLIENTS = [
  { endPoint: "http://127.0.0.1:7480", region: "us-east-1", pathStyle: true },
  { endPoint: "https://s3.eu-west-3.amazonaws.com", region: "eu-west-3", pathStyle: false },
  { endPoint: "https://minio.example.com:9000", region: "auto", pathStyle: true },
  { endPoint: "http://Storage.Example.com:80", region: "us-east-1", pathStyle: true },
];
const KEYS = [
  "app/wal/00000001-20261130101500123.wal",
  "tenants/a b/state.json",
  "x/ä+ö=ü&?%/lease.json",
  "p!'()*~._-/snapshots/00000002-20261130101500123.db",
];
const HEADERS: (Record<string, string> | undefined)[] = [
  undefined,
  { "x-amz-meta-sha256": "ab".repeat(32), "x-amz-meta-walsync": "segment  v2", "Content-Type": "x" },
  { "If-Match": '"0123456789abcdef"' },
  { "If-None-Match": "*" },
];
const DATES = [new Date("2026-11-30T10:15:00.123Z"), new Date("2026-12-01T00:00:00.000Z")];

Deno.test("pre-signed URLs are byte-identical to s3-lite-client's", async () => {
  let compared = 0;
  let plain = 0;
  for (const settings of CLIENTS) {
    for (const sessionToken of [undefined, "FwoGZXIvYXdzE+/token=="]) {
      const accessKey = sessionToken ? "ASIAEXAMPLE" : "AKIAEXAMPLE";
      const secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
      const bucket = "walsync-test";
      const client = new S3Client({ ...settings, bucket, accessKey, secretKey, sessionToken });
      const presigner = new Presigner({
        protocol: client.protocol,
        host: client.host,
        pathStyle: client.pathStyle,
        pathPrefix: client.pathPrefix ?? "",
        region: client.region,
        bucket,
        accessKey,
        secretKey,
        sessionToken,
      });
      for (const method of ["GET", "HEAD", "PUT", "DELETE"] as const) {
        for (const objectName of KEYS) {
          for (const [i, extraHeaders] of HEADERS.entries()) {
            for (const date of DATES) {
              const parameters = i === 1 ? { partNumber: "3", uploadId: "2~a b+c" } : undefined;
              const request: PresignRequest = {
                method,
                objectName,
                expirySeconds: 3600,
                extraHeaders,
                parameters,
                date,
              };
              const expected = await client.getPresignedUrl(method, objectName, {
                expirySeconds: 3600,
                extraHeaders,
                parameters,
                requestDate: date,
              });
              assert.equal(presigner.url(request), expected, JSON.stringify({ settings, request }));
              compared++;
              if (plainRequest(presigner.target, request)) plain++;
            }
          }
        }
      }
    }
  }
  assert.equal(compared, CLIENTS.length * 2 * 4 * KEYS.length * HEADERS.length * DATES.length);
  // Both ways of building a URL were compared: the string-built one (walsync's own requests) and the
  // general one (a "?" in the key).
  assert.equal(plain, compared * 3 / 4, `${plain} of ${compared} took the string-built path`);
});
