/**
 * AWS credentials found the way the AWS CLI finds them, in this order:
 *
 * 1. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) — skipped when a profile
 *    is named with `--profile` (an explicit choice wins, as with the AWS CLI);
 * 2. the profile (`--profile`, `AWS_PROFILE`, else `default`) in the shared credentials file
 *    (`~/.aws/credentials`, `AWS_SHARED_CREDENTIALS_FILE`) and the config file (`~/.aws/config`,
 *    `AWS_CONFIG_FILE`): static keys, or `credential_process`;
 * 3. the container endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI` or `_RELATIVE_URI`, with
 *    `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `_TOKEN_FILE`);
 * 4. the instance metadata service, IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`; off with
 *    `AWS_EC2_METADATA_DISABLED=true`).
 *
 * Temporary credentials are fetched again before they expire. Which source was used is logged at
 * debug level; secrets are never logged (they are registered with src/redact.ts as well).
 * @module
 */
import { join } from "node:path";
import { usageError, WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import { addSecret } from "../redact.ts";

/** A set of credentials; `expiration` is absent for long-term keys. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/** Settings that come from a profile besides credentials. */
export interface ProfileSettings {
  region?: string;
  endpointUrl?: string;
}

type Env = (name: string) => string | undefined;

/** How long before expiry temporary credentials are replaced (at most half their lifetime). */
const REFRESH_BEFORE_MS = 5 * 60_000;
/** Timeout of one request to a credential endpoint (the AWS SDKs use 1 s for IMDS). */
const ENDPOINT_TIMEOUT_MS = 2_000;
/** A credential_process that has not answered by then is stopped. */
const PROCESS_TIMEOUT_MS = 60_000;
const IMDS_DEFAULT = "http://169.254.169.254";
const ECS_HOST = "http://169.254.170.2";

/** Reads an INI file as the AWS CLI writes it: `[section]` then `key = value` lines. */
export function parseIni(text: string): Map<string, Record<string, string>> {
  const sections = new Map<string, Record<string, string>>();
  let current: Record<string, string> | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, "");
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      current = sections.get(section[1]) ?? {};
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (current && eq > 0 && !/^\s/.test(raw)) {
      current[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
    }
  }
  return sections;
}

function readIni(path: string): Map<string, Record<string, string>> | null {
  try {
    return parseIni(Deno.readTextFileSync(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw usageError(`cannot read AWS file ${path}: ${(e as Error).message}`);
  }
}

function home(env: Env): string {
  return env("HOME") ?? env("USERPROFILE") ?? "/";
}

/** The merged settings of `profile` from the credentials and config files (credentials file wins). */
export function readProfile(
  profile: string,
  env: Env,
): { values: Record<string, string>; found: boolean; files: string[] } {
  const credentialsFile = env("AWS_SHARED_CREDENTIALS_FILE") || join(home(env), ".aws", "credentials");
  const configFile = env("AWS_CONFIG_FILE") || join(home(env), ".aws", "config");
  const fromConfig = readIni(configFile)?.get(profile === "default" ? "default" : `profile ${profile}`) ??
    (profile === "default" ? readIni(configFile)?.get("profile default") : undefined);
  const fromCredentials = readIni(credentialsFile)?.get(profile);
  return {
    values: { ...fromConfig, ...fromCredentials },
    found: fromConfig !== undefined || fromCredentials !== undefined,
    files: [credentialsFile, configFile],
  };
}

/** The profile's region and endpoint_url (for region and endpoint when the environment has none). */
export function profileSettings(profile: string | undefined, env: Env): ProfileSettings {
  const name = profile || env("AWS_PROFILE") || "default";
  const { values } = readProfile(name, env);
  return { region: values.region || undefined, endpointUrl: values.endpoint_url || undefined };
}

/** Splits a credential_process command line (not run through a shell), honouring quotes. */
export function splitCommand(command: string): string[] {
  const args: string[] = [];
  let current = "";
  let quote: string | null = null;
  let started = false;
  for (const c of command) {
    if (quote) {
      if (c === quote) quote = null;
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      started = true;
    } else if (/\s/.test(c)) {
      if (started) args.push(current);
      current = "";
      started = false;
    } else {
      current += c;
      started = true;
    }
  }
  if (started) args.push(current);
  return args;
}

/** Credentials from the JSON the endpoints and credential_process return. */
function fromJson(json: Record<string, unknown>, what: string): Credentials {
  const accessKeyId = json.AccessKeyId;
  const secretAccessKey = json.SecretAccessKey;
  const sessionToken = json.Token ?? json.SessionToken;
  if (
    typeof accessKeyId !== "string" || typeof secretAccessKey !== "string" || !accessKeyId || !secretAccessKey
  ) {
    throw new WalsyncError(`${what} returned no AccessKeyId/SecretAccessKey`);
  }
  const expiration = typeof json.Expiration === "string" ? new Date(json.Expiration) : undefined;
  if (expiration && Number.isNaN(expiration.getTime())) {
    throw new WalsyncError(`${what} returned an invalid Expiration`);
  }
  return {
    accessKeyId,
    secretAccessKey,
    sessionToken: typeof sessionToken === "string" && sessionToken ? sessionToken : undefined,
    expiration,
  };
}

async function fetchWithTimeout(url: string, init: RequestInit = {}): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ENDPOINT_TIMEOUT_MS);
  try {
    return await fetch(url, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

async function runCredentialProcess(command: string, profile: string): Promise<Credentials> {
  const [program, ...args] = splitCommand(command);
  const what = `credential_process of profile ${profile}`;
  let output: Deno.CommandOutput;
  try {
    const signal = AbortSignal.timeout(PROCESS_TIMEOUT_MS);
    output = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped", signal }).output();
    if (output.signal === "SIGTERM" && signal.aborted) {
      throw new Error(`no answer within ${PROCESS_TIMEOUT_MS / 1000} s`);
    }
  } catch (e) {
    throw new WalsyncError(`${what} (${program}) could not be run: ${(e as Error).message}`);
  }
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim().split("\n")[0];
    throw new WalsyncError(`${what} (${program}) exited with code ${output.code}: ${stderr}`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(output.stdout));
  } catch {
    throw new WalsyncError(`${what} (${program}) did not print JSON`);
  }
  if (json.Version !== 1) throw new WalsyncError(`${what} printed Version ${json.Version}, expected 1`);
  return fromJson(json, what);
}

async function containerCredentials(env: Env): Promise<Credentials> {
  const full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  const url = full || ECS_HOST + env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const parsed = new URL(url);
  const loopback =
    /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost|169\.254\.170\.2|169\.254\.170\.23|\[fd00:ec2::23\])$/;
  if (full && parsed.protocol === "http:" && !loopback.test(parsed.hostname)) {
    throw usageError(
      `AWS_CONTAINER_CREDENTIALS_FULL_URI must use https or a loopback/container host, not ${parsed.host}`,
    );
  }
  const headers: Record<string, string> = {};
  const tokenFile = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  const token = tokenFile
    ? Deno.readTextFileSync(tokenFile).trim()
    : env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  if (token) headers.authorization = token;
  const response = await fetchWithTimeout(url, { headers });
  if (!response.ok) {
    await response.body?.cancel();
    throw new WalsyncError(`container credential endpoint ${parsed.host} answered ${response.status}`);
  }
  return fromJson(await response.json(), `container credential endpoint ${parsed.host}`);
}

async function imdsCredentials(env: Env): Promise<Credentials> {
  const base = (env("AWS_EC2_METADATA_SERVICE_ENDPOINT") || IMDS_DEFAULT).replace(/\/+$/, "");
  const tokenResponse = await fetchWithTimeout(`${base}/latest/api/token`, {
    method: "PUT",
    headers: { "x-aws-ec2-metadata-token-ttl-seconds": "21600" },
  });
  if (!tokenResponse.ok) {
    await tokenResponse.body?.cancel();
    throw new WalsyncError(`instance metadata service: token request answered ${tokenResponse.status}`);
  }
  const token = (await tokenResponse.text()).trim();
  const headers = { "x-aws-ec2-metadata-token": token };
  const path = `${base}/latest/meta-data/iam/security-credentials/`;
  const roles = await fetchWithTimeout(path, { headers });
  if (!roles.ok) {
    await roles.body?.cancel();
    throw new WalsyncError(`instance metadata service: no instance role (${roles.status})`);
  }
  const role = (await roles.text()).split("\n")[0].trim();
  if (!role) throw new WalsyncError("instance metadata service: no instance role");
  const response = await fetchWithTimeout(path + encodeURIComponent(role), { headers });
  if (!response.ok) {
    await response.body?.cancel();
    throw new WalsyncError(
      `instance metadata service: credentials of role ${role} answered ${response.status}`,
    );
  }
  return fromJson(await response.json(), `instance metadata service (role ${role})`);
}

/** One way of obtaining credentials: a name for the debug log and a fetch. */
interface Source {
  name: string;
  fetch: () => Promise<Credentials>;
}

/**
 * Finds the source the AWS CLI would use (without contacting any endpoint yet). Returns null when
 * there is none but the instance metadata service, which is then tried last.
 */
function chooseSource(profile: string | undefined, env: Env): Source | null {
  if (!profile) {
    const id = env("AWS_ACCESS_KEY_ID");
    const secret = env("AWS_SECRET_ACCESS_KEY");
    if (id && secret) {
      const credentials = {
        accessKeyId: id,
        secretAccessKey: secret,
        sessionToken: env("AWS_SESSION_TOKEN") || undefined,
      };
      return { name: "environment variables", fetch: () => Promise.resolve(credentials) };
    }
  }
  const name = profile || env("AWS_PROFILE") || "default";
  const { values, found, files } = readProfile(name, env);
  if (!found && (profile || env("AWS_PROFILE"))) {
    throw usageError(`AWS profile "${name}" not found in ${files.join(" or ")}`);
  }
  if (values.aws_access_key_id && values.aws_secret_access_key) {
    const credentials = {
      accessKeyId: values.aws_access_key_id,
      secretAccessKey: values.aws_secret_access_key,
      sessionToken: values.aws_session_token || undefined,
    };
    return { name: `profile ${name}`, fetch: () => Promise.resolve(credentials) };
  }
  if (values.credential_process) {
    const command = values.credential_process;
    return {
      name: `credential_process of profile ${name}`,
      fetch: () => runCredentialProcess(command, name),
    };
  }
  if (found && (profile || env("AWS_PROFILE")) && Object.keys(values).some((k) => k.startsWith("role_arn"))) {
    throw usageError(`AWS profile "${name}" uses role_arn (assume-role), which walsync does not support yet`);
  }
  if (env("AWS_CONTAINER_CREDENTIALS_FULL_URI") || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
    return { name: "container credential endpoint", fetch: () => containerCredentials(env) };
  }
  if ((env("AWS_EC2_METADATA_DISABLED") ?? "").toLowerCase() === "true") return null;
  return { name: "instance metadata service (IMDSv2)", fetch: () => imdsCredentials(env) };
}

/** The error when no source has credentials (exit 2, as a missing setting). */
function missingCredentials(detail?: string): WalsyncError {
  return usageError(
    "missing S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or use an " +
      "AWS profile (--profile, AWS_PROFILE), a container or an instance role" +
      (detail ? ` (${detail})` : ""),
  );
}

/** Hands out current credentials, fetching them again before they expire. */
export class CredentialProvider {
  #current: Credentials | null = null;
  #refreshAt = 0;
  #pending: Promise<Credentials> | null = null;
  /** How many times credentials were fetched (for tests and the debug log). */
  fetches = 0;

  constructor(readonly source: Source | null) {}

  /** The name of the source, e.g. "profile prod" (never a secret). */
  get sourceName(): string {
    return this.source?.name ?? "none";
  }

  /** True when the credentials never change (environment, static profile keys). */
  get isStatic(): boolean {
    return this.#current !== null && this.#current.expiration === undefined;
  }

  /** Current credentials; fetches them the first time and again shortly before they expire. */
  get(now = Date.now()): Promise<Credentials> {
    if (this.#current && now < this.#refreshAt) return Promise.resolve(this.#current);
    this.#pending ??= this.#fetch(now).finally(() => (this.#pending = null));
    return this.#pending;
  }

  async #fetch(now: number): Promise<Credentials> {
    if (!this.source) throw missingCredentials("AWS_EC2_METADATA_DISABLED is set");
    let credentials: Credentials;
    try {
      credentials = await this.source.fetch();
    } catch (e) {
      // Expiring credentials that are still valid are used while the source is briefly unavailable.
      if (this.#current?.expiration && this.#current.expiration.getTime() > now + 10_000) {
        log.warn(`could not refresh AWS credentials from ${this.source.name}: ${(e as Error).message}`);
        this.#refreshAt = now + 10_000;
        return this.#current;
      }
      if (e instanceof WalsyncError && e.exitCode !== 1) throw e;
      if (this.source.name.startsWith("instance metadata")) throw missingCredentials((e as Error).message);
      throw new WalsyncError(
        `cannot get AWS credentials from ${this.source.name}: ${(e as Error).message}`,
        5,
      );
    }
    this.fetches++;
    addSecret(credentials.secretAccessKey);
    if (credentials.sessionToken) addSecret(credentials.sessionToken);
    const expires = credentials.expiration?.getTime();
    const lifetime = expires === undefined ? Infinity : expires - now;
    this.#refreshAt = expires === undefined ? Infinity : expires - Math.min(REFRESH_BEFORE_MS, lifetime / 2);
    this.#current = credentials;
    log.debug(
      `AWS credentials from ${this.source.name}` +
        (credentials.expiration ? `, valid until ${credentials.expiration.toISOString()}` : ""),
    );
    return credentials;
  }
}

/** The provider for `profile` (or the AWS CLI's default chain). Reads files, contacts nothing. */
export function credentialProvider(
  profile: string | undefined,
  env: Env = (n) => Deno.env.get(n),
): CredentialProvider {
  const provider = new CredentialProvider(chooseSource(profile, env));
  log.debug(`AWS credentials source: ${provider.sourceName}`);
  return provider;
}
