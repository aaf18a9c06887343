/**
 * `${VAR}` expansion in config values: `${VAR}` is the variable's value (an unset variable is an
 * error naming it), `${VAR:-default}` falls back to `default` when it is unset or empty, and `$$`
 * is a literal `$`. A `$` followed by anything else is kept as it is.
 * @module
 */

const REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?/g;

/** Thrown with the name of the variable that is missing or the malformed reference. */
export class ExpansionError extends Error {}

/** Expands `${VAR}` references in `text` from `env`. */
export function expandVariables(text: string, env: (name: string) => string | undefined): string {
  return text.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === "$$") return "$";
    if (name === undefined) {
      throw new ExpansionError(
        `malformed variable reference "${match}": expected \${NAME} or \${NAME:-default}`,
      );
    }
    const value = env(name);
    if (value !== undefined && (value !== "" || fallback === undefined)) return value;
    if (fallback !== undefined) return fallback;
    throw new ExpansionError(
      `environment variable ${name} is not set (write \${${name}:-default} for a default)`,
    );
  });
}
