/** Small helpers shared by the selector core. */

/** Closes a Deno resource, ignoring that it may be closed already. */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed by Deno (for example after a reset); nothing to release.
  }
}

/**
 * A controller whose signal cancels a `Deno.connect` without losing what it
 * connected. Deno.connect ends with `finally { signal.throwIfAborted() }`
 * (Deno 2.9.6): an abort that lands after the connect completed, before its
 * continuation ran (a loaded loop), throws the new connection away open, for
 * good (a test's sanitizer sees it). With this signal the connection is handed
 * back, for the caller, which aborted, to close.
 */
export function connectAbort(): AbortController {
  const controller = new AbortController();
  Object.defineProperty(controller.signal, "throwIfAborted", { value: noop });
  return controller;
}

function noop(): void {}

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

/**
 * `Deno.connect`'s error, naming the host when Deno's does not: Deno 2.9 has no
 * `Deno.errors` class for a failed lookup or an unreachable host, and words
 * them as a plain `Error` without the name ("failed to lookup address
 * information: ...", "No route to host (os error 113)"). The errno `code`, when
 * Deno gives one, stays on the error. This machine short of descriptors is not
 * about the host, and keeps its own words.
 */
export function connectError(error: unknown, hostname: string): unknown {
  if (
    !(error instanceof Error) || error.constructor !== Error ||
    names(error.message, hostname) || isShortage(error)
  ) return error;
  const named = new Error(`Cannot connect to "${hostname}": ${error.message}`, {
    cause: error,
  });
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) (named as { code?: unknown }).code = code;
  return named;
}

/** Whether `message` names `hostname` as a word of its own (not "a" in "address"). */
function names(message: string, hostname: string): boolean {
  for (let at = message.indexOf(hostname); at >= 0;) {
    const before = message[at - 1];
    const after = message[at + hostname.length];
    if (
      (before === undefined || !/[\w.-]/.test(before)) &&
      (after === undefined || !/[\w-]/.test(after))
    ) return true;
    at = message.indexOf(hostname, at + 1);
  }
  return false;
}

/**
 * Whether a connect failed on the way to the host, in a way a later try may
 * not: no route to the host or its network (EHOSTUNREACH, ENETUNREACH,
 * EHOSTDOWN, ENETDOWN), or a lookup the resolver could not answer for now
 * (EAI_AGAIN, "Temporary failure in name resolution"). A name that does not
 * exist is not one: it fails the same way again.
 */
export function isUnreachable(error: Error): boolean {
  if (error instanceof Deno.errors.NetworkUnreachable) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") {
    return /^(EHOSTUNREACH|ENETUNREACH|EHOSTDOWN|ENETDOWN|EAI_AGAIN)$/.test(
      code,
    );
  }
  // Without a code, by the message: errno numbers as Linux has them.
  return (Deno.build.os === "linux" &&
    /\(os error (113|101|112|100)\)/.test(error.message)) ||
    /temporary failure in name resolution/i.test(error.message);
}
