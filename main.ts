/**
 * walsync command line: parses arguments and calls the command modules in src/commands.
 * Results go to stdout, logs and errors to stderr; exit codes are listed in src/errors.ts.
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import { corruptError, ExitCode, osErrorReason, usageError, WalsyncError } from "./src/errors.ts";
import * as log from "./src/log.ts";
import { redact } from "./src/redact.ts";
import { formatListTable, listCommand } from "./src/commands/list.ts";
import { restoreCommand } from "./src/commands/restore.ts";
import { snapshotCommand } from "./src/commands/snapshot.ts";
import { formatVerifyReport, verifyCommand } from "./src/commands/verify.ts";
import { formatPruneResults, pruneCommand } from "./src/commands/prune.ts";
import { parseRetention } from "./src/lifecycle/options.ts";
import { WATCH_DEFAULTS, watchCommand } from "./src/commands/watch.ts";
import { resolveWatchSettings } from "./src/config/watch_settings.ts";
import { operationsHooks } from "./src/metrics/hooks.ts";
import { openStore } from "./src/storage/open.ts";
import { parseTimestamp, TIME_EXAMPLES } from "./src/time.ts";
import denoConfig from "./deno.json" with { type: "json" };

const backupOption = (mandatory = true) =>
  new Option("-b, --backup <URL>", "where backups live: s3://bucket[/prefix] or file:///abs/dir")
    .env("WALSYNC_BACKUP_URL")
    .makeOptionMandatory(mandatory);
const endpointOption = () =>
  new Option("--endpoint <URL>", "S3 endpoint, e.g. http://127.0.0.1:7480 (overrides AWS_ENDPOINT_URL_S3)");

const compressionOption = () =>
  new Option("--compression <ALGO>", "compression of new snapshots and segments: zstd or none")
    .choices(["zstd", "none"]).default("zstd").env("WALSYNC_COMPRESSION");
const levelOption = () =>
  new Option(
    "--compression-level <N>",
    "zstd level of new snapshots and segments: 1 (fastest) to 19 (default 3)",
  )
    .env("WALSYNC_COMPRESSION_LEVEL");
const keyFileOption = () =>
  new Option(
    "--encryption-key-file <PATH>",
    "client-side encryption key (base64 of 32 bytes); overrides WALSYNC_ENCRYPTION_KEY",
  );
/** The store of a command, with its codec options. */
const storeOf = (opts: Record<string, string | undefined>, profile?: string) =>
  openStore(opts.backup!, {
    endpoint: opts.endpoint,
    profile,
    compression: opts.compression,
    compressionLevel: opts.compressionLevel,
    encryptionKeyFile: opts.encryptionKeyFile,
  });

function print(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text.endsWith("\n") ? text : text + "\n"));
}

/** Parses a positive whole number option, or fails with a usage error naming the option. */
function positiveInteger(text: string, option: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) {
    throw usageError(`invalid ${option} "${text}": expected a positive whole number`);
  }
  return value;
}

/** Builds the command tree. */
export function buildProgram(): Command {
  const program = new Command("walsync")
    .description("Continuous, verified backup of SQLite databases to S3-compatible storage or a directory.")
    .version(`walsync ${denoConfig.version} (${Deno.build.target})`)
    .option("-q, --quiet", "only log warnings and errors")
    .option("-v, --verbose", "log debug details")
    .addOption(
      new Option("--log-format <FORMAT>", "log lines as text or one JSON object per line").choices([
        "human",
        "json",
      ]),
    )
    .option(
      "--profile <NAME>",
      "AWS profile from ~/.aws/credentials and ~/.aws/config (default: AWS_PROFILE)",
    )
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => print(s.trimEnd()),
      writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
    })
    .hook("preAction", (cmd) => log.configureLog(cmd.opts()));

  program.command("snapshot")
    .description(
      "Take a consistent snapshot of a live database (WAL or rollback journal) as a new generation.",
    )
    .argument("<DB>", "path of the SQLite database file")
    .addOption(backupOption())
    .addOption(endpointOption())
    .option("--name <NAME>", "name of the database in the backup (default: file name without .db)")
    .addOption(compressionOption())
    .addOption(levelOption())
    .addOption(keyFileOption())
    .option("--json", "print the result as JSON")
    .action(async (db: string, opts) => {
      const store = storeOf(opts, program.opts().profile);
      const result = await snapshotCommand(store, db, opts.name);
      print(
        opts.json
          ? JSON.stringify(result)
          : `snapshot ${result.name} generation ${result.generation}: ${result.key} (${result.databaseSize} bytes, ` +
            `stored as ${result.size}, sha256 ${result.sha256})`,
      );
    });

  program.command("watch")
    .description("Continuously replicate one or more WAL-mode databases until SIGINT/SIGTERM.")
    .argument(
      "[DB...]",
      "database paths, each optionally with a name: path[:name] (replace the config's dbs); an argument that " +
        "names an existing file is a path (an existing file wins), even if it contains a colon. Symbolic links " +
        "are resolved: walsync reads the real file and its WAL, as SQLite does; the default name comes from " +
        "the path given",
    )
    .addOption(backupOption(false))
    .addOption(endpointOption())
    .addOption(
      new Option("-c, --config <FILE>", "YAML config file (url, intervals, dbs: ...)").env("WALSYNC_CONFIG"),
    )
    .addOption(compressionOption())
    .addOption(levelOption())
    .addOption(keyFileOption())
    .option(
      "--sync-interval <SECS>",
      "how often committed WAL frames are shipped (500ms, 15s, 5m...; default 1s)",
    )
    .option("--snapshot-interval <SECS>", "how often a full snapshot is taken (default 1h)")
    .option(
      "--lease-seconds <SECS>",
      `single-writer lease per database; renewed every third of it (default ${
        WATCH_DEFAULTS.leaseMs / 1000
      })`,
    )
    .option(
      "--checkpoint-frames <N>",
      `checkpoint when the WAL holds this many frames (default ${WATCH_DEFAULTS.checkpointFrames})`,
    )
    .option(
      "--concurrency <N>",
      `how many databases sync (upload) at the same time (default ${WATCH_DEFAULTS.concurrency})`,
    )
    .option("--metrics-addr <HOST:PORT>", "serve Prometheus /metrics and /healthz here (default: off)")
    .option(
      "--retention <DURATION>",
      "history to keep: 1h, 7d...; 0 or forever keeps everything (default 24h)",
    )
    .option("--retention-check-interval <DURATION>", "time between two retention passes (default 1h)")
    .option(
      "--fine-history <DURATION>",
      "keep every segment (one-sync-interval precision) this long; older history is compacted (default 1h)",
    )
    .option(
      "--compaction-levels <LIST>",
      "compaction level windows, finest first, or off (default 30s,5m,1h)",
    )
    .option(
      "--compaction-interval <DURATION>",
      "time between two compaction passes (default: the finest level)",
    )
    .action(async (dbs: string[], opts, cmd: Command) => {
      const s = await resolveWatchSettings(dbs, opts, (k) => cmd.getOptionValueSource(k), WATCH_DEFAULTS);
      const global = program.opts();
      log.configureLog({
        format: global.logFormat ? undefined : s.logFormat,
        level: global.quiet || global.verbose ? undefined : s.logLevel,
      });
      const store = openStore(s.url, {
        endpoint: s.endpoint,
        region: s.region,
        profile: global.profile ?? s.profile,
        compression: s.compression,
        compressionLevel: s.compressionLevel,
        encryptionKeyFile: s.encryptionKeyFile,
        encryptionKey: s.encryptionKey,
      });
      const code = await watchCommand(store, s.targets, {
        ...WATCH_DEFAULTS,
        syncIntervalMs: s.syncIntervalMs,
        snapshotIntervalMs: s.snapshotIntervalMs,
        checkpointFrames: s.checkpointFrames,
        leaseMs: s.leaseMs,
        concurrency: opts.concurrency === undefined
          ? WATCH_DEFAULTS.concurrency
          : positiveInteger(opts.concurrency, "--concurrency"),
        retentionMs: s.retentionMs,
        retentionCheckIntervalMs: s.retentionCheckIntervalMs,
        ...s.compaction,
        ...operationsHooks(s),
      });
      if (code !== ExitCode.Ok) throw new WalsyncError("watch ended with errors", code as 1);
    });

  program.command("list")
    .description("List backed-up databases: generations, latest snapshot, restorable time range.")
    .addOption(backupOption())
    .addOption(endpointOption())
    .option("--json", "print a JSON array (shape documented in the README)")
    .action(async (opts) => {
      const store = openStore(opts.backup, { endpoint: opts.endpoint, profile: program.opts().profile });
      const databases = await listCommand(store);
      print(opts.json ? JSON.stringify(databases, null, 2) : formatListTable(databases));
    });

  program.command("restore")
    .description("Restore a database (latest state or a point in time), verified, atomically.")
    .argument("<NAME>", "name of the backed-up database")
    .requiredOption("-o, --output <PATH>", "where to write the restored database")
    .addOption(backupOption())
    .addOption(endpointOption())
    .addOption(keyFileOption())
    .option(
      "--point-in-time <TIME>",
      "restore the state as of this time (default: latest): RFC 3339 with a zone, " +
        `e.g. ${TIME_EXAMPLES}; impossible dates and times without a zone are refused`,
    )
    .option("--force", "replace the output file if it exists")
    .option("--if-db-not-exists", "do nothing (exit 0) if the output file already exists")
    .option("--if-replica-exists", "do nothing (exit 0) if there is no backup of NAME")
    .option("--json", "print the result as JSON")
    .action(async (name: string, opts) => {
      const pointInTime = opts.pointInTime === undefined ? undefined : parseTimestamp(opts.pointInTime);
      const store = storeOf(opts, program.opts().profile);
      const result = await restoreCommand(store, name, {
        output: opts.output,
        pointInTime,
        force: opts.force,
        ifDbNotExists: opts.ifDbNotExists,
        ifReplicaExists: opts.ifReplicaExists,
      });
      if (opts.json) print(JSON.stringify(result));
      else if (result.skipped) print(`restore ${name}: skipped (${result.skipped})`);
      else {
        print(
          `restored ${name} to ${result.output}: generation ${result.generation}, state as of ${result.time}, ` +
            `${result.segments} segment(s), ${result.size} bytes`,
        );
      }
    });

  program.command("verify")
    .description(
      "Check every backup object (SHA-256, WAL checksums, chain continuity); report what can be restored.",
    )
    .argument("[NAME...]", "databases to check (default: all)")
    .addOption(backupOption())
    .addOption(endpointOption())
    .addOption(keyFileOption())
    .option(
      "--quick",
      "read metadata only (no download): finds missing objects and broken chains, not bad bytes",
    )
    .option("--json", "print the report as JSON (shape documented in the README)")
    .action(async (names: string[], opts) => {
      const store = storeOf(opts, program.opts().profile);
      const report = await verifyCommand(store, names, { quick: opts.quick });
      print(opts.json ? JSON.stringify(report, null, 2) : formatVerifyReport(report));
      if (!report.ok) throw corruptError("verify: damaged or missing objects (see the report)");
    });
  program.command("prune")
    .description("Delete backup history older than the retention window (and leftovers of failed uploads).")
    .argument("[NAME...]", "databases to prune (default: all)")
    .addOption(backupOption())
    .addOption(endpointOption())
    .option(
      "--retention <DURATION>",
      "history to keep: 1h, 7d...; 0 or forever keeps everything (default 24h)",
    )
    .option("--dry-run", "print what would be deleted, one key per line, and delete nothing")
    .option("--json", "print per database what was (or would be) deleted, as JSON")
    .action(async (names: string[], opts) => {
      const store = storeOf(opts, program.opts().profile);
      const results = await pruneCommand(store, names, {
        retentionMs: parseRetention(opts.retention),
        dryRun: opts.dryRun,
        onKey: opts.dryRun && !opts.json
          ? (key, size) => print(`would delete ${key} (${size} bytes)`)
          : undefined,
      });
      print(opts.json ? JSON.stringify(results, null, 2) : formatPruneResults(results));
    });
  return program;
}

/** The first line of an error's message (with its class name unless it is a plain Error). */
function firstLine(e: unknown, withName = false): string {
  const text = e instanceof Error
    ? (withName && e.name !== "Error" ? `${e.name}: ` : "") + e.message
    : String(e);
  return text.split("\n")[0];
}

/** Runs the CLI with `args`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(args, { from: "user" });
    return ExitCode.Ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help"
      ) {
        return ExitCode.Ok;
      }
      return ExitCode.Usage;
    }
    if (e instanceof WalsyncError) {
      log.error(redact(e.message));
      return e.exitCode;
    }
    // An error the operating system or SQLite reported that no module turned into a message: still
    // an ordinary failure (exit 1), told in one line. Only anything else is a bug (exit 70).
    const sqlite = (e as { code?: unknown } | null)?.code === "ERR_SQLITE_ERROR";
    if (sqlite || osErrorReason(e) !== null) {
      log.error(redact(`${sqlite ? "SQLite: " : ""}${firstLine(e)}`));
      log.debug(redact(e instanceof Error ? (e.stack ?? "") : ""));
      return ExitCode.Failure;
    }
    log.error(`internal error (a bug in walsync, please report it): ${redact(firstLine(e, true))}`);
    log.debug(redact(e instanceof Error ? (e.stack ?? "") : ""));
    return ExitCode.Internal;
  }
}

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
