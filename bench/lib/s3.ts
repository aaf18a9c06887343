/**
 * S3 access for the benchmarks, independent of walsync's own storage layer: s3-lite-client (as a
 * plain client and for polling) and the `aws` CLI (a second plain client, and bulk deletes).
 * Settings come from the environment that `scripts/rgw.sh env` exports.
 * @module
 */
import { S3Client } from "@bradenmacdonald/s3-lite-client";
import { run } from "./proc.ts";

/** Where the benchmark's objects go. */
export interface S3Settings {
  endpoint: string;
  bucket: string;
  region: string;
  accessKey: string;
  secretKey: string;
}

/** Reads the S3 settings from the environment; throws if something is missing. */
export function s3SettingsFromEnv(): S3Settings {
  const get = (name: string) => {
    const value = Deno.env.get(name);
    if (!value) {
      throw new Error(`${name} is not set (run through bench/run.sh, which sources scripts/rgw.sh env)`);
    }
    return value;
  };
  return {
    endpoint: get("AWS_ENDPOINT_URL_S3"),
    bucket: Deno.env.get("WALSYNC_TEST_BUCKET") ?? "walsync-test",
    region: Deno.env.get("AWS_REGION") ?? "us-east-1",
    accessKey: get("AWS_ACCESS_KEY_ID"),
    secretKey: get("AWS_SECRET_ACCESS_KEY"),
  };
}

/** An s3-lite-client for the bench bucket (path-style, as walsync uses for custom endpoints). */
export function s3Client(s: S3Settings): S3Client {
  return new S3Client({
    endPoint: s.endpoint,
    region: s.region,
    bucket: s.bucket,
    accessKey: s.accessKey,
    secretKey: s.secretKey,
    pathStyle: true,
  });
}

/** Runs the aws CLI against the bench endpoint; returns stdout. */
export function aws(s: S3Settings, args: string[]): Promise<string> {
  return run("aws", ["--endpoint-url", s.endpoint, ...args], {
    env: { AWS_DEFAULT_REGION: s.region, AWS_PAGER: "" },
  });
}

/** Deletes every object under `prefix` (batched DeleteObjects, via `aws s3 rm --recursive`). */
export async function removePrefix(s: S3Settings, prefix: string): Promise<void> {
  if (!/^bench-[a-z0-9]+(\/|$)/.test(prefix)) {
    throw new Error(`refusing to delete outside bench-*: ${prefix}`);
  }
  await aws(s, [
    "s3",
    "rm",
    `s3://${s.bucket}/${prefix.replace(/\/$/, "")}/`,
    "--recursive",
    "--only-show-errors",
  ]);
}

/** Total size and count of the objects under `prefix`. */
export async function prefixUsage(
  client: S3Client,
  prefix: string,
): Promise<{ bytes: number; objects: number }> {
  let bytes = 0;
  let objects = 0;
  for await (const o of client.listObjects({ prefix })) {
    bytes += o.size;
    objects++;
  }
  return { bytes, objects };
}

/**
 * Keys under `prefix` that sort after `startAfter` (one ListObjectsV2 request with `start-after`,
 * up to 1000 keys): a cheap way to poll for new objects.
 */
export async function listAfter(client: S3Client, prefix: string, startAfter: string): Promise<string[]> {
  const response = await client.makeRequest({
    method: "GET",
    objectName: "",
    query: {
      "list-type": "2",
      prefix,
      "max-keys": "1000",
      ...(startAfter ? { "start-after": startAfter } : {}),
    },
    returnBody: true,
  });
  const xml = await response.text();
  return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => unescapeXml(m[1]));
}

function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}
