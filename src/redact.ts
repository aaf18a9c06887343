/**
 * Removes secrets from text before it is logged or shown: SigV4 signatures in URLs and headers,
 * credentials in query strings, and the configured secret key itself.
 * @module
 */

const patterns: RegExp[] = [
  /(X-Amz-Signature=)[0-9a-fA-F]+/g,
  /(Signature=)[0-9a-fA-F]+/g,
  /(X-Amz-Credential=)[^&\s"']+/g,
  /(X-Amz-Security-Token=)[^&\s"']+/g,
];

/** Secrets obtained at run time (from a profile or a credential endpoint), redacted like the key. */
const secrets = new Set<string>();

/** Adds a secret to redact (e.g. a secret key or session token from a credential source). */
export function addSecret(secret: string): void {
  if (secret.length >= 4) secrets.add(secret);
}

/** Returns `text` with signatures and the secret access key replaced by `[REDACTED]`. */
export function redact(text: string): string {
  let out = text;
  for (const pattern of patterns) out = out.replace(pattern, "$1[REDACTED]");
  const secret = Deno.env.get("AWS_SECRET_ACCESS_KEY");
  if (secret && secret.length >= 4) out = out.split(secret).join("[REDACTED]");
  for (const s of secrets) out = out.split(s).join("[REDACTED]");
  return out;
}
