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
 * What a caller's callback or method returned, when nothing awaits it: a
 * promise's rejection is ignored, as its throw would be, rather than going
 * unhandled (which ends the process, and every other crawl in it).
 */
export function ignoreRejection(returned: unknown): void {
  if (isThenable(returned)) Promise.resolve(returned).catch(() => {});
}

/**
 * Whether an accept or a connect failed for want of descriptors or memory
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM): it fails again until some are freed.
 */
export function isShortage(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string"
    ? /^(EMFILE|ENFILE|ENOBUFS|ENOMEM)$/.test(code)
    : hasErrno(error, uncoded().shortage);
}

/**
 * The errnos of the conditions {@linkcode isShortage} and
 * {@linkcode isUnreachable} look for, by the OS's own numbers: Deno 2.9 gives
 * some no `code` (its table has no ENFILE, ENETDOWN or EHOSTDOWN, nor Windows'
 * WSAENETDOWN, WSAEHOSTDOWN or WSATRY_AGAIN, the error Windows' resolver gives
 * for EAI_AGAIN), and words them "Host is down (os error 112)" on Linux,
 * "(os error 64)" on macOS, "(os error 10064)" on Windows. Numbers mean other
 * things on another OS (Linux's 100 and 101 are macOS's EPROTO and ETIME), so an
 * OS not listed is matched by none.
 */
const UNCODED_ERRNOS: Record<
  string,
  { shortage: readonly number[]; unreachable: readonly number[] }
> = {
  // EMFILE, ENFILE, ENOBUFS, ENOMEM; EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN.
  linux: { shortage: [24, 23, 105, 12], unreachable: [113, 101, 112, 100] },
  android: { shortage: [24, 23, 105, 12], unreachable: [113, 101, 112, 100] },
  // The BSDs' numbers, macOS's too.
  darwin: { shortage: [24, 23, 55, 12], unreachable: [65, 51, 64, 50] },
  freebsd: { shortage: [24, 23, 55, 12], unreachable: [65, 51, 64, 50] },
  netbsd: { shortage: [24, 23, 55, 12], unreachable: [65, 51, 64, 50] },
  openbsd: { shortage: [24, 23, 55, 12], unreachable: [65, 51, 64, 50] },
  // WSAEMFILE, WSAENOBUFS, ERROR_TOO_MANY_OPEN_FILES, ERROR_NOT_ENOUGH_MEMORY,
  // ERROR_OUTOFMEMORY; WSAEHOSTUNREACH, WSAENETUNREACH, WSAEHOSTDOWN,
  // WSAENETDOWN, ERROR_HOST_UNREACHABLE, ERROR_NETWORK_UNREACHABLE, WSATRY_AGAIN.
  windows: {
    shortage: [10024, 10055, 4, 8, 14],
    unreachable: [10065, 10051, 10064, 10050, 1232, 1231, 11002],
  },
};
const NO_ERRNOS = { shortage: [], unreachable: [] } as const;

/** This OS's row of {@linkcode UNCODED_ERRNOS}, looked up at each call. */
function uncoded(): (typeof UNCODED_ERRNOS)[string] {
  return UNCODED_ERRNOS[Deno.build.os] ?? NO_ERRNOS;
}

/** Whether `error`'s message ends in "(os error N)" for an `N` of `errnos`. */
function hasErrno(error: Error, errnos: readonly number[]): boolean {
  const errno = /\(os error (\d+)\)/.exec(error.message)?.[1];
  return errno !== undefined && errnos.includes(Number(errno));
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
  // Without a code, by the message: the errno as this OS numbers it.
  return hasErrno(error, uncoded().unreachable) ||
    /temporary failure in name resolution/i.test(error.message);
}
