/**
 * The sources of temporary credentials: credential_process, the container credential endpoint and
 * the instance metadata service (IMDSv2). Each returns {@link Credentials} or throws a WalsyncError
 * that says which source failed and how, never with a secret. The order they are tried in is
 * src/storage/credentials.ts's.
 * @module
 */
import { usageError, WalsyncError } from "../errors.ts";
import type { Credentials } from "./credentials.ts";

type Env = (name: string) => string | undefined;

/** Timeout of one request to a credential endpoint (the AWS SDKs use 1 s for IMDS). */
const ENDPOINT_TIMEOUT_MS = 2_000;
/** A credential_process that has not answered by then is stopped. */
const PROCESS_TIMEOUT_MS = 60_000;
const IMDS_DEFAULT = "http://169.254.169.254";
const ECS_HOST = "http://169.254.170.2";

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

export async function runCredentialProcess(command: string, profile: string): Promise<Credentials> {
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

/**
 * The container credential endpoint's URL: `AWS_CONTAINER_CREDENTIALS_FULL_URI`, else
 * `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on the ECS agent's address (http://169.254.170.2), or on
 * `WALSYNC_CONTAINER_CREDENTIALS_HOST` when set (a walsync setting, not an AWS one: for tests, which
 * cannot bind that address, and platforms that serve the endpoint elsewhere). Either must be https or
 * a loopback/container host, since the authorization token is sent to it (docs/design.md §12).
 */
export function containerCredentialsUrl(env: Env): URL {
  const full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  const host = env("WALSYNC_CONTAINER_CREDENTIALS_HOST");
  const [variable, url] = full ? ["AWS_CONTAINER_CREDENTIALS_FULL_URI", full] : [
    "WALSYNC_CONTAINER_CREDENTIALS_HOST",
    (host || ECS_HOST).replace(/\/+$/, "") +
    env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
  ];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usageError(
      `${full || host ? variable : "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"}: not a URL: ${url}`,
    );
  }
  const loopback =
    /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost|169\.254\.170\.2|169\.254\.170\.23|\[fd00:ec2::23\])$/;
  if ((full || host) && parsed.protocol === "http:" && !loopback.test(parsed.hostname)) {
    throw usageError(`${variable} must use https or a loopback/container host, not ${parsed.host}`);
  }
  return parsed;
}

export async function containerCredentials(env: Env): Promise<Credentials> {
  const parsed = containerCredentialsUrl(env);
  const headers: Record<string, string> = {};
  const tokenFile = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  const token = tokenFile
    ? Deno.readTextFileSync(tokenFile).trim()
    : env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  if (token) headers.authorization = token;
  const response = await fetchWithTimeout(parsed.href, { headers });
  if (!response.ok) {
    await response.body?.cancel();
    throw new WalsyncError(`container credential endpoint ${parsed.host} answered ${response.status}`);
  }
  return fromJson(await response.json(), `container credential endpoint ${parsed.host}`);
}

export async function imdsCredentials(env: Env): Promise<Credentials> {
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
