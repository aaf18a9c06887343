/**
 * STS AssumeRole for a profile with `role_arn` (docs/design.md §12): the source credentials
 * (`source_profile` or `credential_source`, resolved by src/storage/credentials.ts) sign an
 * AssumeRole request (SigV4, src/storage/sigv4.ts); the temporary credentials it returns are used
 * and fetched again before they expire, like every other temporary source.
 * @module
 */
import { WalsyncError } from "../errors.ts";
import type { Credentials } from "./credentials.ts";
import { signV4 } from "./sigv4.ts";

type Env = (name: string) => string | undefined;

/** An STS request that does not answer by then is abandoned (and retried by the provider). */
const STS_TIMEOUT_MS = 10_000;

/** What a role profile asks for. */
export interface RoleRequest {
  /** The profile, for messages. */
  profile: string;
  roleArn: string;
  /** `role_session_name`; walsync-<time> when absent. */
  sessionName?: string;
  externalId?: string;
  /** `duration_seconds`; STS's default (1 h) when absent. */
  durationSeconds?: number;
  /** Region of the STS endpoint: the profile's, else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1. */
  region: string;
  /** The profile's `endpoint_url` (applies to every service, as with the AWS CLI). */
  endpointUrl?: string;
}

/** The STS endpoint: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the profile's endpoint_url, else regional. */
export function stsEndpoint(request: RoleRequest, env: Env): URL {
  const text = env("AWS_ENDPOINT_URL_STS") || env("AWS_ENDPOINT_URL") || request.endpointUrl ||
    `https://sts.${request.region}.amazonaws.com`;
  return new URL(text.endsWith("/") ? text : text + "/");
}

function xmlValue(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  if (!m) return undefined;
  return m[1].replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}

/** Calls STS AssumeRole signed with `source`; returns the role's temporary credentials. */
export async function assumeRole(request: RoleRequest, source: Credentials, env: Env): Promise<Credentials> {
  const url = stsEndpoint(request, env);
  const params = new URLSearchParams({
    Action: "AssumeRole",
    Version: "2011-06-15",
    RoleArn: request.roleArn,
    RoleSessionName: request.sessionName ?? `walsync-${Date.now()}`,
  });
  if (request.externalId) params.set("ExternalId", request.externalId);
  if (request.durationSeconds) params.set("DurationSeconds", String(request.durationSeconds));
  const body = params.toString();
  const headers = signV4(
    {
      method: "POST",
      url,
      headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      body,
    },
    source,
    request.region,
    "sts",
  );
  const what = `STS AssumeRole of ${request.roleArn} (profile ${request.profile}) at ${url.host}`;
  let response: Response;
  let text: string;
  try {
    const signal = AbortSignal.timeout(STS_TIMEOUT_MS);
    response = await fetch(url, { method: "POST", headers, body, signal });
    text = await response.text();
  } catch (e) {
    throw new WalsyncError(`${what}: ${(e as Error).message}`);
  }
  if (!response.ok) {
    const code = xmlValue(text, "Code") ?? "no error code";
    const message = xmlValue(text, "Message");
    throw new WalsyncError(`${what} answered ${response.status} (${code})${message ? `: ${message}` : ""}`);
  }
  const accessKeyId = xmlValue(text, "AccessKeyId");
  const secretAccessKey = xmlValue(text, "SecretAccessKey");
  const sessionToken = xmlValue(text, "SessionToken");
  const expiration = new Date(xmlValue(text, "Expiration") ?? "");
  if (!accessKeyId || !secretAccessKey || Number.isNaN(expiration.getTime())) {
    throw new WalsyncError(
      `${what} returned no complete Credentials (AccessKeyId, SecretAccessKey, Expiration)`,
    );
  }
  // STS always sends a SessionToken; S3-compatible servers' STS may not (their keys are then enough).
  return { accessKeyId, secretAccessKey, sessionToken: sessionToken || undefined, expiration };
}
