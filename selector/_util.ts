/** Small helpers shared by the selector core. */

/** Closes a Deno resource, ignoring that it may be closed already. */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed by Deno (for example after a reset); nothing to release.
  }
}

export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `"${value}"`;
  if (typeof value === "object" || typeof value === "function") {
    return (value as object).constructor?.name ?? typeof value;
  }
  return String(value);
}

/**
 * Whether a callback typed to return nothing returned a promise after all (an
 * async function): its rejection needs a handler, or it ends the process.
 */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * Whether an accept or a connect failed for want of descriptors or memory
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM): it fails again until some are freed.
 */
export function isShortage(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string"
    ? /^(EMFILE|ENFILE|ENOBUFS|ENOMEM)$/.test(code)
    : /\(os error (24|23|105|12)\)/.test(error.message);
}
