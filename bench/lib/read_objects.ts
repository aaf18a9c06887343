/**
 * The "plain client" reference for restoring many small objects: list a prefix and read every
 * object in full, with no verification and nothing written. Run as its own process under
 * `/usr/bin/time`, like `walsync restore`.
 *
 * usage: deno run -A bench/lib/read_objects.ts s3 PREFIX CONCURRENCY [LIMIT]   (s3-lite-client;
 *          lists everything, reads the first LIMIT objects: enough for a rate)
 *        deno run -A bench/lib/read_objects.ts file DIR                 (objects and their sidecars)
 * Prints `<objects> <bytes>`.
 * @module
 */
import { join } from "node:path";
import { s3Client, s3SettingsFromEnv } from "./s3.ts";

async function readS3(prefix: string, concurrency: number, limit: number): Promise<[number, number]> {
  const client = s3Client(s3SettingsFromEnv());
  const keys: string[] = [];
  for await (const o of client.listObjects({ prefix })) keys.push(o.key);
  keys.splice(limit);
  let next = 0;
  let bytes = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < keys.length) {
      const response = await client.getObject(keys[next++]);
      bytes += (await response.arrayBuffer()).byteLength;
    }
  }));
  return [keys.length, bytes];
}

async function readDir(dir: string): Promise<[number, number]> {
  let objects = 0;
  let bytes = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      const [o, b] = await readDir(path);
      objects += o;
      bytes += b;
    } else if (entry.isFile) {
      if (!entry.name.endsWith(".meta.json")) objects++;
      bytes += (await Deno.readFile(path)).byteLength;
    }
  }
  return [objects, bytes];
}

const [kind, where, concurrency, limit] = Deno.args;
const [objects, bytes] = kind === "s3"
  ? await readS3(where, Number(concurrency ?? 1), Number(limit ?? Infinity))
  : await readDir(where);
console.log(`${objects} ${bytes}`);
