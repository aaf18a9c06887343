/**
 * walsync command line: parses arguments and calls the command modules in src/commands.
 * Results go to stdout, logs and errors to stderr; exit codes are listed in src/errors.ts.
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import { corruptError, ExitCode, usageError, WalsyncError } from "./src/errors.ts";
import * as log from "./src/log.ts";
import { redact } from "./src/redact.ts";
import { formatListTable, listCommand } from "./src/commands/list.ts";
import { restoreCommand } from "./src/commands/restore.ts";
import { snapshotCommand } from "./src/commands/snapshot.ts";
import { formatVerifyReport, verifyCommand } from "./src/commands/verify.ts";
import { WATCH_DEFAULTS, watchCommand } from "./src/commands/watch.ts";
import { parseTargets } from "./src/watch/targets.ts";
import { openStore } from "./src/storage/open.ts";
import denoConfig from "./deno.json" with { type: "json" };

const backupOption = () =>
  new Option("-b, --backup <URL>", "where backups live: s3://bucket[/prefix] or file:///abs/dir")
    .env("WALSYNC_BACKUP_URL")
    .makeOptionMandatory();
const endpointOption = () =>
  new Option("--endpoint <URL>", "S3 endpoint, e.g. http://127.0.0.1:7480 (overrides AWS_ENDPOINT_URL_S3)");

function print(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text.endsWith("\n") ? text : text + "\n"));
}

function parseTime(text: string): number {
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms)) {
    throw usageError(`invalid --point-in-time "${text}": expected ISO 8601, e.g. 2026-11-24T10:30:00Z`);
  }
  return ms;
}

function seconds(text: string, option: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    throw usageError(`invalid ${option} "${text}": expected a positive number`);
  }
  return value;
}

/** Builds the command tree. */
export function buildProgram(): Command {
  const program = new Command("walsync")
    .description("Continuous, verified backup of SQLite databases to S3-compatible storage or a directory.")
    .version(denoConfig.version)
    .option("-q, --quiet", "only log warnings and errors")
    .option("-v, --verbose", "log debug details")
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
    .option("--json", "print the result as JSON")
    .action(async (db: string, opts) => {
      const store = openStore(opts.backup, { endpoint: opts.endpoint });
      const result = await snapshotCommand(store, db, opts.name);
      print(
        opts.json
          ? JSON.stringify(result)
          : `snapshot ${result.name} generation ${result.generation}: ${result.key} (${result.size} bytes, sha256 ${result.sha256})`,
      );
    });

  program.command("watch")
    .description("Continuously replicate one or more WAL-mode databases until SIGINT/SIGTERM.")
    .argument("<DB...>", "database paths, each optionally with a name: path[:name]")
    .addOption(backupOption())
    .addOption(endpointOption())
    .option("--sync-interval <SECS>", "how often committed WAL frames are shipped", "1")
    .option("--snapshot-interval <SECS>", "how often a full snapshot is taken", "3600")
    .option(
      "--lease-seconds <SECS>",
      "single-writer lease per database; renewed every third of it",
      String(WATCH_DEFAULTS.leaseMs / 1000),
    )
    .option(
      "--checkpoint-frames <N>",
      "checkpoint when the WAL holds this many frames",
      String(WATCH_DEFAULTS.checkpointFrames),
    )
    .option(
      "--concurrency <N>",
      "how many databases sync (upload) at the same time",
      String(WATCH_DEFAULTS.concurrency),
    )
    .action(async (dbs: string[], opts) => {
      const targets = parseTargets(dbs);
      const store = openStore(opts.backup, { endpoint: opts.endpoint });
      const code = await watchCommand(store, targets, {
        ...WATCH_DEFAULTS,
        syncIntervalMs: seconds(opts.syncInterval, "--sync-interval") * 1000,
        snapshotIntervalMs: seconds(opts.snapshotInterval, "--snapshot-interval") * 1000,
        checkpointFrames: Math.round(seconds(opts.checkpointFrames, "--checkpoint-frames")),
        leaseMs: seconds(opts.leaseSeconds, "--lease-seconds") * 1000,
        concurrency: Math.round(seconds(opts.concurrency, "--concurrency")),
      });
      if (code !== ExitCode.Ok) throw new WalsyncError("watch ended with errors", code as 1);
    });

  program.command("list")
    .description("List backed-up databases: generations, latest snapshot, restorable time range.")
    .addOption(backupOption())
    .addOption(endpointOption())
    .option("--json", "print a JSON array (shape documented in the README)")
    .action(async (opts) => {
      const store = openStore(opts.backup, { endpoint: opts.endpoint });
      const databases = await listCommand(store);
      print(opts.json ? JSON.stringify(databases, null, 2) : formatListTable(databases));
    });

  program.command("restore")
    .description("Restore a database (latest state or a point in time), verified, atomically.")
    .argument("<NAME>", "name of the backed-up database")
    .requiredOption("-o, --output <PATH>", "where to write the restored database")
    .addOption(backupOption())
    .addOption(endpointOption())
    .option("--point-in-time <ISO8601>", "restore the state as of this time (default: latest)")
    .option("--force", "replace the output file if it exists")
    .option("--if-db-not-exists", "do nothing (exit 0) if the output file already exists")
    .option("--if-replica-exists", "do nothing (exit 0) if there is no backup of NAME")
    .option("--json", "print the result as JSON")
    .action(async (name: string, opts) => {
      const pointInTime = opts.pointInTime === undefined ? undefined : parseTime(opts.pointInTime);
      const store = openStore(opts.backup, { endpoint: opts.endpoint });
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
    .option(
      "--quick",
      "read metadata only (no download): finds missing objects and broken chains, not bad bytes",
    )
    .option("--json", "print the report as JSON (shape documented in the README)")
    .action(async (names: string[], opts) => {
      const store = openStore(opts.backup, { endpoint: opts.endpoint });
      const report = await verifyCommand(store, names, { quick: opts.quick });
      print(opts.json ? JSON.stringify(report, null, 2) : formatVerifyReport(report));
      if (!report.ok) throw corruptError("verify: damaged or missing objects (see the report)");
    });
  return program;
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
    log.error(`internal error: ${redact(e instanceof Error ? (e.stack ?? e.message) : String(e))}`);
    return ExitCode.Internal;
  }
}

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
