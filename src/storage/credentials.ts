/**
 * AWS credentials found the way the AWS CLI finds them, in this order:
 *
 * 1. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) — skipped when a profile
 *    is named with `--profile` (an explicit choice wins, as with the AWS CLI);
 * 2. the profile (`--profile`, `AWS_PROFILE`, else `default`) in the shared credentials file
 *    (`~/.aws/credentials`, `AWS_SHARED_CREDENTIALS_FILE`) and the config file (`~/.aws/config`,
 *    `AWS_CONFIG_FILE`): `role_arn` (STS AssumeRole, with `source_profile` or `credential_source`),
 *    static keys, or `credential_process`;
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
import { containerCredentials, imdsCredentials, runCredentialProcess } from "./credential_sources.ts";
import { assumeRole, type RoleRequest } from "./assume_role.ts";

export { splitCommand } from "./credential_sources.ts";

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

/** One way of obtaining credentials: a name for the debug log and a fetch. */
interface Source {
  name: string;
  fetch: () => Promise<Credentials>;
}

/** `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), or null when unset. */
function environmentSource(env: Env): Source | null {
  const id = env("AWS_ACCESS_KEY_ID");
  const secret = env("AWS_SECRET_ACCESS_KEY");
  if (!id || !secret) return null;
  const credentials = {
    accessKeyId: id,
    secretAccessKey: secret,
    sessionToken: env("AWS_SESSION_TOKEN") || undefined,
  };
  return { name: "environment variables", fetch: () => Promise.resolve(credentials) };
}

const containerSource = (env: Env): Source => ({
  name: "container credential endpoint",
  fetch: () => containerCredentials(env),
});
const imdsSource = (env: Env): Source => ({
  name: "instance metadata service (IMDSv2)",
  fetch: () => imdsCredentials(env),
});

/**
 * Finds the source the AWS CLI would use (without contacting any endpoint yet). Returns null when
 * there is none but the instance metadata service, which is then tried last.
 */
function chooseSource(profile: string | undefined, env: Env): Source | null {
  if (!profile) {
    const fromEnvironment = environmentSource(env);
    if (fromEnvironment) return fromEnvironment;
  }
  const name = profile || env("AWS_PROFILE") || "default";
  const { values, found, files } = readProfile(name, env);
  if (!found && (profile || env("AWS_PROFILE"))) {
    throw usageError(`AWS profile "${name}" not found in ${files.join(" or ")}`);
  }
  const own = profileSource(name, values, env, [name]);
  if (own) return own;
  if (env("AWS_ROLE_ARN") && env("AWS_WEB_IDENTITY_TOKEN_FILE")) {
    // The AWS CLI would assume this role: going on with the container or instance role would back
    // up with other credentials than the operator chose.
    throw usageError(
      "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are set (assume-role with web identity), which walsync " +
        "does not support: give the credentials another way (environment variables, credential_process)",
    );
  }
  if (env("AWS_CONTAINER_CREDENTIALS_FULL_URI") || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
    return containerSource(env);
  }
  if ((env("AWS_EC2_METADATA_DISABLED") ?? "").toLowerCase() === "true") return null;
  return imdsSource(env);
}

/**
 * The credentials a profile itself gives, in the AWS CLI's order: `role_arn` (AssumeRole), static
 * keys, `credential_process`; null when it has none. SSO and web identity profiles are a usage
 * error: the AWS CLI would use them, so silently going on with other credentials would back up
 * with credentials the operator did not choose. `chain` lists the profiles followed so far.
 */
function profileSource(
  name: string,
  values: Record<string, string>,
  env: Env,
  chain: string[],
): Source | null {
  const workaround = "give the credentials another way (environment variables, or a profile with " +
    `credential_process = aws configure export-credentials --profile ${name} --format process)`;
  if (values.sso_session || values.sso_start_url) {
    throw usageError(`AWS profile "${name}" uses AWS SSO, which walsync does not support: ${workaround}`);
  }
  if (values.web_identity_token_file) {
    throw usageError(
      `AWS profile "${name}" uses web_identity_token_file (assume-role with web identity), which walsync ` +
        `does not support: ${workaround}`,
    );
  }
  if (values.role_arn) return roleSource(name, values, env, chain, workaround);
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
  return null;
}

/**
 * A `role_arn` profile: its source (`source_profile`, followed like the AWS CLI, or
 * `credential_source` Environment / EcsContainer / Ec2InstanceMetadata) signs an STS AssumeRole
 * (src/storage/assume_role.ts) each time the role's credentials are due. Anything missing or
 * unsupported (`mfa_serial`) is a usage error naming the profile.
 */
function roleSource(
  name: string,
  values: Record<string, string>,
  env: Env,
  chain: string[],
  workaround: string,
): Source {
  const fail = (why: string) => usageError(`AWS profile "${name}" (role_arn): ${why}`);
  if (values.mfa_serial) {
    throw fail(`mfa_serial needs an MFA code at every refresh, which walsync cannot ask for: ${workaround}`);
  }
  if (values.source_profile && values.credential_source) {
    throw fail("give source_profile or credential_source, not both");
  }
  let base: Source | null;
  if (values.source_profile) {
    const sourceName = values.source_profile;
    const source = readProfile(sourceName, env);
    if (!source.found) throw fail(`source_profile "${sourceName}" not found in ${source.files.join(" or ")}`);
    if (sourceName === name) {
      // A profile that is its own source assumes the role with its own keys (as the AWS CLI does).
      base = profileSource(name, { ...values, role_arn: "" }, env, chain);
    } else if (chain.includes(sourceName)) {
      throw fail(`source_profile loop: ${[...chain, sourceName].join(" -> ")}`);
    } else base = profileSource(sourceName, source.values, env, [...chain, sourceName]);
    if (!base) {
      throw fail(`source_profile "${sourceName}" has no credentials (keys, credential_process, role_arn)`);
    }
  } else if (values.credential_source === "Environment") {
    base = environmentSource(env);
    if (!base) {
      throw fail("credential_source = Environment, but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are unset");
    }
  } else if (values.credential_source === "EcsContainer") base = containerSource(env);
  else if (values.credential_source === "Ec2InstanceMetadata") base = imdsSource(env);
  else if (values.credential_source) {
    throw fail(
      `unknown credential_source "${values.credential_source}" (Environment, EcsContainer or Ec2InstanceMetadata)`,
    );
  } else throw fail("neither source_profile nor credential_source says which credentials assume the role");
  const duration = values.duration_seconds ? Number(values.duration_seconds) : undefined;
  if (duration !== undefined && !(Number.isInteger(duration) && duration >= 900 && duration <= 43_200)) {
    throw fail(`duration_seconds "${values.duration_seconds}" is not a whole number from 900 to 43200`);
  }
  const request: RoleRequest = {
    profile: name,
    roleArn: values.role_arn,
    sessionName: values.role_session_name || undefined,
    externalId: values.external_id || undefined,
    durationSeconds: duration,
    region: env("AWS_REGION") || env("AWS_DEFAULT_REGION") || values.region || "us-east-1",
    endpointUrl: values.endpoint_url || undefined,
  };
  const from = base;
  return {
    name: `role ${values.role_arn} of profile ${name} (assumed with ${from.name})`,
    fetch: async () => assumeRole(request, await from.fetch(), env),
  };
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
