/**
 * The "plain client" reference: one file up or down with s3-lite-client alone, as an application
 * would use it (putObject with a stream and its size; getObject streamed to a file). Run as its own
 * process under `/usr/bin/time`, like walsync, so both pay process start-up.
 *
 * usage: deno run -A bench/lib/s3_lite_transfer.ts put FILE KEY | get KEY FILE | get-durable KEY FILE
 * Prints the number of bytes transferred. `get-durable` also fsyncs the file before it exits, as a
 * restore must (the restored database is on disk before it is moved into place).
 *
 * RGW quirk (ENVIRONMENT.md): completing a multipart upload returns an empty <ETag>, and
 * s3-lite-client then throws although the object is stored. That error is accepted when a HEAD
 * afterwards shows the object with the file's size.
 * @module
 */
import { s3Client, s3SettingsFromEnv } from "./s3.ts";

const [op, a, b] = Deno.args;
const client = s3Client(s3SettingsFromEnv());

if (op === "put") {
  const size = (await Deno.stat(a)).size;
  const file = await Deno.open(a);
  try {
    await client.putObject(b, file.readable, { size });
  } catch (e) {
    if (!/ETag/.test((e as Error).message)) throw e;
    const stat = await client.statObject(b);
    if (stat.size !== size) {
      throw new Error(`uploaded ${stat.size} bytes, expected ${size}: ${(e as Error).message}`);
    }
  }
  console.log(size);
} else if (op === "get" || op === "get-durable") {
  const response = await client.getObject(a);
  const file = await Deno.open(b, { write: true, create: true, truncate: true });
  await response.body!.pipeTo(file.writable);
  if (op === "get-durable") {
    using written = await Deno.open(b, { write: true });
    await written.sync();
  }
  console.log((await Deno.stat(b)).size);
} else {
  console.error("usage: s3_lite_transfer.ts put FILE KEY | get KEY FILE | get-durable KEY FILE");
  Deno.exit(2);
}
