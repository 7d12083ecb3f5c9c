import { assert, assertEquals, assertThrows } from "@std/assert";
import { HttpParseError, ProxyError } from "../mod.ts";
import {
  backoff,
  isTransient,
  originPause,
  parseRetryAfter,
  retryDelay,
  retryPolicy,
} from "../client/_retry.ts";
import { connectError } from "../selector/_util.ts";

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const retryAfter = (value: string) => new Headers({ "retry-after": value });

Deno.test("retryPolicy() has the documented defaults and rejects bad values", () => {
  const policy = retryPolicy(undefined);
  assertEquals(policy.limit, 0);
  assertEquals([...policy.statuses], [408, 429, 500, 502, 503, 504]);
  assertEquals(policy.baseDelay, 250);
  assertEquals(policy.maxDelay, 30_000);
  assertThrows(() => retryPolicy({ limit: -1 }), RangeError, "retry.limit");
  assertThrows(() => retryPolicy({ limit: 1.5 }), RangeError, "retry.limit");
  assertThrows(() => retryPolicy({ baseDelay: -1 }), RangeError, "baseDelay");
  assertThrows(() => retryPolicy({ maxDelay: NaN }), RangeError, "maxDelay");
  // No wait for ever: a huge Retry-After would never end, and a jitter draw
  // of 0 × Infinity is a NaN deadline.
  assertThrows(
    () => retryPolicy({ maxDelay: Infinity }),
    RangeError,
    "retry.maxDelay must be a finite non-negative number, received Infinity",
  );
  assertThrows(
    () => retryPolicy({ baseDelay: Infinity }),
    RangeError,
    "retry.baseDelay must be a finite",
  );
  assertThrows(() => retryPolicy({ statuses: [99] }), RangeError, "statuses");
  assertThrows(
    () => retryPolicy({ statuses: [1000] }),
    RangeError,
    "100..999",
  );
  assertEquals(retryPolicy({ statuses: [999] }).statuses.has(999), true);
  assertThrows(
    () => retryPolicy({ statuses: 503 as unknown as number[] }),
    TypeError,
    "statuses",
  );
});

Deno.test("parseRetryAfter() reads delay-seconds and all three HTTP-date forms", () => {
  assertEquals(parseRetryAfter("120", NOW), 120_000);
  assertEquals(parseRetryAfter(" 0 ", NOW), 0);
  assertEquals(parseRetryAfter("Thu, 01 Jan 2026 12:00:05 GMT", NOW), 5_000);
  assertEquals(parseRetryAfter("Thursday, 01-Jan-26 12:00:07 GMT", NOW), 7_000);
  assertEquals(parseRetryAfter("Thu Jan  1 12:00:09 2026", NOW), 9_000);
  assertEquals(parseRetryAfter("Thu Jan 01 12:00:09 2026", NOW), 9_000);
  // A two-digit year more than 50 years ahead is in the past century.
  assertEquals(parseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", NOW), 0);
  assertEquals(parseRetryAfter("Thu, 01 Jan 2026 11:00:00 GMT", NOW), 0);
  // 29 February of a leap year is a date.
  assertEquals(
    parseRetryAfter("Tue, 29 Feb 2028 12:00:00 GMT", NOW),
    Date.UTC(2028, 1, 29, 12) - NOW,
  );
  for (const bad of ["", "-1", "1.5", "soon", "12abc"]) {
    assertEquals(parseRetryAfter(bad, NOW), null, bad);
  }
  // Free text that Date.parse reads as a date is not an HTTP-date.
  for (
    const bad of [
      "Retry in 2030",
      "N/A 5",
      "Mon 1",
      "2026-01-01T12:00:05Z",
      "Thu, 01 Jan 2026 12:00:05 +0000",
      "Thu, 01 Foo 2026 12:00:05 GMT",
      "Thu, 32 Jan 2026 12:00:05 GMT",
      "Sat, 31 Feb 2026 12:00:05 GMT", // not 3 March
      "Thu, 31 Apr 2026 12:00:05 GMT",
      "Sun Feb 29 12:00:05 2026", // not a leap year
      "Thu, 01 Jan 2026 25:00:05 GMT",
    ]
  ) {
    assertEquals(parseRetryAfter(bad, NOW), null, bad);
  }
  assertEquals(parseRetryAfter(null, NOW), null);
});

Deno.test("backoff() is full jitter under min(maxDelay, baseDelay × 2^(n-1))", () => {
  const policy = retryPolicy({ baseDelay: 100, maxDelay: 1_000 });
  assertEquals(backoff(policy, 1, 0), 0);
  assertEquals(backoff(policy, 1, 0.5), 50);
  assertEquals(backoff(policy, 3, 0.5), 200);
  assertEquals(backoff(policy, 10, 0.999), 999);
  for (let n = 1; n < 40; n++) {
    const wait = backoff(policy, n, 0.999999);
    assert(wait >= 0 && wait <= Math.min(1_000, 100 * 2 ** (n - 1)));
  }
});

Deno.test("retryDelay() retries listed statuses, a proxy refusing with one, and transient errors up to the limit", () => {
  const policy = retryPolicy({ limit: 2, baseDelay: 100 });
  const headers = new Headers();
  assertEquals(
    retryDelay(policy, 1, true, { status: 503, headers }, NOW, 0.5),
    50,
  );
  assertEquals(
    retryDelay(policy, 2, true, { status: 503, headers }, NOW, 0.5),
    100,
  );
  assertEquals(
    retryDelay(policy, 3, true, { status: 503, headers }, NOW, 0.5),
    -1,
  );
  assertEquals(
    retryDelay(policy, 1, true, { status: 404, headers }, NOW, 0.5),
    -1,
  );
  assertEquals(
    retryDelay(policy, 1, true, { status: 200, headers }, NOW, 0.5),
    -1,
  );
  const timedOut = { error: new Deno.errors.TimedOut("connect") };
  assertEquals(retryDelay(policy, 1, true, timedOut, NOW, 0.5), 50);
  const parse = { error: new HttpParseError("invalid-status-line", "x", 0) };
  assertEquals(retryDelay(policy, 1, true, parse, NOW, 0.5), -1);
  // A response cut short by the connection's end is a connection error.
  for (
    const code of [
      "empty-response",
      "truncated-head",
      "truncated-body",
    ] as const
  ) {
    const cut = { error: new HttpParseError(code, "x", 0) };
    assertEquals(retryDelay(policy, 1, true, cut, NOW, 0.5), 50, code);
  }
  assertEquals(
    retryDelay(policy, 1, true, { error: new TypeError("x") }, NOW, 0.5),
    -1,
  );
  // A proxy's refusal of a tunnel: as its status would be.
  const refused = (status: number) => ({
    error: new ProxyError("127.0.0.1:3128", status, ""),
  });
  assertEquals(retryDelay(policy, 1, true, refused(503), NOW, 0.5), 50);
  assertEquals(retryDelay(policy, 1, true, refused(407), NOW, 0.5), -1);
  assertEquals(retryDelay(policy, 1, false, refused(503), NOW, 0.5), -1);
  // Not replayable (a POST, a stream body): never.
  assertEquals(
    retryDelay(policy, 1, false, { status: 503, headers }, NOW, 0.5),
    -1,
  );
  assertEquals(retryDelay(policy, 1, false, timedOut, NOW, 0.5), -1);
  assertEquals(retryDelay(retryPolicy({}), 1, true, timedOut, NOW, 0.5), -1);
});

Deno.test("retryDelay() takes Retry-After in seconds or as a date, capped at maxDelay", () => {
  const policy = retryPolicy({ limit: 1, maxDelay: 10_000 });
  assertEquals(
    retryDelay(
      policy,
      1,
      true,
      { status: 429, headers: retryAfter("3") },
      NOW,
      0.5,
    ),
    3_000,
  );
  assertEquals(
    retryDelay(
      policy,
      1,
      true,
      { status: 503, headers: retryAfter("Thu, 01 Jan 2026 12:00:02 GMT") },
      NOW,
      0.5,
    ),
    2_000,
  );
  assertEquals(
    retryDelay(
      policy,
      1,
      true,
      { status: 503, headers: retryAfter("3600") },
      NOW,
      0.5,
    ),
    10_000,
  );
  // Unparsable: the jittered backoff instead.
  assertEquals(
    retryDelay(
      policy,
      1,
      true,
      { status: 503, headers: retryAfter("later") },
      NOW,
      0.5,
    ),
    125,
  );
});

Deno.test("originPause() pauses on 429 and 503 with Retry-After only, capped", () => {
  assertEquals(originPause(429, "2", 30_000, NOW), 2_000);
  assertEquals(originPause(503, "100", 5_000, NOW), 5_000);
  assertEquals(originPause(503, null, 30_000, NOW), 0);
  assertEquals(originPause(500, "2", 30_000, NOW), 0);
  assertEquals(originPause(301, "2", 30_000, NOW), 0);
});

Deno.test("isTransient() accepts connection errors, timeouts, empty responses, unreachable hosts, a resolver's temporary failure and a shortage of descriptors or ports only", () => {
  // As Deno 2.9.6 words them: a plain Error, with the errno as `code` when
  // there is one, and as the plain TCP and TLS connects name the host in them.
  const noRoute = Object.assign(new Error("No route to host (os error 113)"), {
    code: "EHOSTUNREACH",
  });
  const lookup = (why: string) =>
    new Error(`failed to lookup address information: ${why}`);
  for (
    const error of [
      new Deno.errors.ConnectionRefused("x"),
      new Deno.errors.ConnectionReset("x"),
      new Deno.errors.TimedOut("x"),
      new Deno.errors.BrokenPipe("x"),
      new HttpParseError("empty-response", "x", 0),
      // This machine short of descriptors or local ports, for a while.
      Object.assign(new Error("Too many open files (os error 24)"), {
        code: "EMFILE",
      }),
      new Deno.errors.AddrNotAvailable("x"),
      noRoute,
      connectError(noRoute, "dead.test") as Error,
      new Deno.errors.NetworkUnreachable(
        "Network is unreachable (os error 101)",
      ),
      lookup("Temporary failure in name resolution"),
      connectError(
        lookup("Temporary failure in name resolution"),
        "a.test",
      ) as Error,
    ]
  ) assert(isTransient(error), String(error));
  for (
    const error of [
      new TypeError("x"),
      new HttpParseError("body-too-large", "x", 0),
      new Deno.errors.PermissionDenied("x"),
      // A name that does not exist does not come to exist on a retry.
      lookup("Name or service not known"),
      connectError(
        lookup("Name or service not known"),
        "nosuch.invalid",
      ) as Error,
      "reason",
    ]
  ) assert(!isTransient(error), String(error));
  // The host is named unless the message names it already, as a word: host
  // "a" is not in "address".
  assertEquals(
    (connectError(lookup("Name or service not known"), "a") as Error).message,
    'Cannot connect to "a": failed to lookup address information: Name or service not known',
  );
  const named = new Error("getaddrinfo ENOTFOUND nosuch.invalid");
  assert(connectError(named, "nosuch.invalid") === named);
});

/** `fn` run as if on `os` (`Deno.build.os`), restored after. */
function onOs<T>(os: string, fn: () => T): T {
  const build = Deno.build;
  Object.defineProperty(Deno, "build", { value: { ...build, os } });
  try {
    return fn();
  } finally {
    Object.defineProperty(Deno, "build", { value: build });
  }
}

Deno.test("isTransient() reads a code-less errno by the numbers of the OS it runs on: macOS's and Windows' too", () => {
  const build = Deno.build;
  // Deno 2.9 gives these no `code`: its errno table has no ENFILE, ENETDOWN
  // or EHOSTDOWN, nor Windows' WSAENETDOWN, WSAEHOSTDOWN or WSATRY_AGAIN
  // (getaddrinfo's EAI_AGAIN there). The messages are Rust's, as each OS words
  // them.
  const os = (message: string) => new Error(message);
  const transient: [string, string][] = [
    ["linux", "Host is down (os error 112)"],
    ["linux", "Network is down (os error 100)"],
    ["linux", "Too many open files in system (os error 23)"],
    ["darwin", "Host is down (os error 64)"],
    ["darwin", "Network is down (os error 50)"],
    ["darwin", "Too many open files in system (os error 23)"],
    [
      "windows",
      "A socket operation failed because the destination host was down. (os error 10064)",
    ],
    [
      "windows",
      "A socket operation encountered a dead network. (os error 10050)",
    ],
    [
      "windows",
      "This is usually a temporary error during hostname resolution and means that the local server did not receive a response from an authoritative server. (os error 11002)",
    ],
  ];
  for (const [name, message] of transient) {
    assert(onOs(name, () => isTransient(os(message))), `${name}: ${message}`);
  }
  // The same numbers are other errors elsewhere: macOS's 100 is EPROTO, 101
  // ETIME; Windows' 12 is ERROR_INVALID_ACCESS, 24 ERROR_BAD_LENGTH.
  const permanent: [string, string][] = [
    ["darwin", "Protocol error (os error 100)"],
    ["darwin", "STREAM ioctl timeout (os error 101)"],
    ["windows", "Invalid access code. (os error 12)"],
    [
      "windows",
      "The program issued a command but the command length is incorrect. (os error 24)",
    ],
    // A name Windows' resolver does not know: a code ("ENOENT"), not retried.
    ["windows", "No such host is known. (os error 11001)"],
    ["linux", "Host is down (os error 1120)"],
    ["plan9", "Host is down (os error 112)"],
  ];
  for (const [name, message] of permanent) {
    assert(!onOs(name, () => isTransient(os(message))), `${name}: ${message}`);
  }
  assert(Deno.build === build, "Deno.build restored");
});
