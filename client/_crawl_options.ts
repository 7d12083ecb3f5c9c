/**
 * The crawl's options, checked once before any connection, and the per-URL
 * request options built from them and a {@linkcode RequestSpec}. No I/O.
 *
 * @module
 */
import type { FetchAllOptions, RequestSpec } from "./fetch_all.ts";
import {
  byteLimit,
  type InternalOptions,
  kRedirectMode,
  kTransport,
  nonNegative,
  optionsObject,
} from "./http_client.ts";
import { shown, typeName } from "./_redact.ts";
import {
  bodyProblem,
  kRequestWriter,
  normalizeHeaders,
  RequestWriter,
  validateBody,
  validateMethod,
} from "./_request.ts";
import { type RetryPolicy, retryPolicy } from "./_retry.ts";
import { checkCaCerts, checkClientCert } from "../selector/_client_cert.ts";
import { readProxy, readTransport, readUnixSocket } from "./_route.ts";
import type { SchedulerLimits } from "./_scheduler.ts";

/** The least default for `maxIdle`: as Go's `MaxIdleConns`. */
const MIN_MAX_IDLE = 100;

/** The crawl's validated options. */
export interface CrawlConfig {
  readonly limits: SchedulerLimits;
  /** How many URLs may be read from the source and not finished. */
  readonly maxOpen: number;
  readonly redirect: "follow" | "manual" | "error";
  readonly keepAlive: boolean;
  readonly maxIdlePerOrigin: number;
  readonly maxIdle: number;
  readonly retry: RetryPolicy;
  /** The request options of a plain URL: one object shared by every request. */
  readonly shared: RequestOptions;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: FetchAllOptions["onProgress"];
}

/** A `sink` given as a function: called for a fresh sink per attempt. */
export type SinkFactory = (url: string) => WritableStream<Uint8Array>;

/** The options key of a `sink` given as a function (the crawl's, not the client's). */
export const kSinkFactory: unique symbol = Symbol("selectors.sinkFactory");

/** What the crawl passes to each `HttpClient`, and a sink function's place. */
export type RequestOptions = InternalOptions & { [kSinkFactory]?: SinkFactory };

/**
 * Checks every crawl-wide option.
 *
 * @throws {TypeError} For an invalid method, header, body, `redirect`, `sink`,
 *   `tap`, `signal` or `onProgress`.
 * @throws {RangeError} For an out-of-range number.
 */
export function crawlConfig(given: FetchAllOptions | null): CrawlConfig {
  const options = optionsObject(given);
  const concurrency = options.concurrency ?? 64;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(
      `Cannot fetch: concurrency must be a positive integer, received ${
        shown(concurrency)
      }`,
    );
  }
  const maxQueued = options.maxQueued ?? 4 * concurrency;
  if (!Number.isInteger(maxQueued) || maxQueued < 0) {
    throw new RangeError(
      `Cannot fetch: maxQueued must be a non-negative integer, received ${
        shown(maxQueued)
      }`,
    );
  }
  const perOrigin = options.perOrigin?.concurrency ?? Infinity;
  if (
    typeof perOrigin !== "number" ||
    !(Number.isInteger(perOrigin) && perOrigin >= 1 || perOrigin === Infinity)
  ) {
    throw new RangeError(
      `Cannot fetch: perOrigin.concurrency must be a positive integer, received ${
        shown(perOrigin)
      }`,
    );
  }
  const redirect = options.redirect ?? "follow";
  if (redirect !== "follow" && redirect !== "manual" && redirect !== "error") {
    throw new TypeError(
      `Cannot fetch: redirect must be "follow", "manual" or "error", received ${
        shown(redirect)
      }`,
    );
  }
  const keepAlive = options.keepAlive ?? true;
  const method = validateMethod(options.method ?? "GET");
  const headers = normalizeHeaders(options.headers);
  const body = validateBody(options.body ?? null, method);
  const decompress = options.decompress ?? true;
  const shared: RequestOptions = {
    method,
    headers,
    body,
    timeout: nonNegative("timeout", options.timeout, 30_000),
    maxResponseBytes: byteLimit(
      "maxResponseBytes",
      options.maxResponseBytes,
      Infinity,
    ),
    decompress,
    keepAlive,
    // A redirect's body is thrown away once followed: decoded only so far.
    ...(redirect === "manual" ? {} : { [kRedirectMode]: redirect }),
  };
  shared.connectTimeout = nonNegative(
    "connectTimeout",
    options.connectTimeout,
    10_000,
  );
  shared.idleTimeout = nonNegative(
    "idleTimeout",
    options.idleTimeout,
    Infinity,
  );
  if (options.caCerts !== undefined) {
    checkCaCerts(options.caCerts, "fetch");
    shared.caCerts = options.caCerts;
  }
  if (options.cert !== undefined || options.key !== undefined) {
    if (typeof options.cert !== "string" || typeof options.key !== "string") {
      throw new TypeError(
        "Cannot fetch: cert and key must be given together, as PEM strings",
      );
    }
    checkClientCert(options.cert, options.key, "fetch");
    shared.cert = options.cert;
    shared.key = options.key;
  }
  const transport = readTransport(options.proxy, options.unixSocket);
  if (transport !== undefined) shared[kTransport] = transport;
  readSink(options.sink, shared);
  const tap = readTap(options.tap);
  if (tap !== undefined) shared.tap = tap;
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot fetch: signal must be an AbortSignal, received ${
        typeName(signal)
      }`,
    );
  }
  const onProgress = options.onProgress;
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw new TypeError(
      `Cannot fetch: onProgress must be a function, received ${
        typeName(onProgress)
      }`,
    );
  }
  // Every plain URL's request differs only in its request line and Host: encode
  // the rest once for the whole crawl.
  if (!(body instanceof ReadableStream)) {
    shared[kRequestWriter] = new RequestWriter({
      method,
      headers,
      body,
      keepAlive,
      decompress,
    });
  }
  return {
    limits: {
      concurrency,
      perOrigin,
      delay: typeof options.perOrigin?.delay === "function"
        ? options.perOrigin.delay
        : finiteDelay(options.perOrigin?.delay),
    },
    maxOpen: concurrency + maxQueued,
    redirect,
    keepAlive,
    maxIdlePerOrigin: nonNegative(
      "maxIdlePerOrigin",
      options.maxIdlePerOrigin,
      concurrency,
    ),
    maxIdle: nonNegative(
      "maxIdle",
      options.maxIdle,
      Math.max(MIN_MAX_IDLE, 2 * concurrency),
    ),
    retry: retryPolicy(options.retry),
    shared,
    signal,
    onProgress,
  };
}

/**
 * A `sink` option into `options`: a `WritableStream` (whether it is locked is
 * checked when a request takes it) or a function making one per attempt, each
 * replacing the other; else `TypeError`: the crawl aborts a sink it gives up on.
 */
function readSink(sink: unknown, options: RequestOptions): void {
  if (sink === undefined) return;
  if (sink instanceof WritableStream) {
    options.sink = sink;
    delete options[kSinkFactory];
  } else if (typeof sink === "function") {
    options[kSinkFactory] = sink as SinkFactory;
    delete options.sink;
  } else {
    throw new TypeError(
      `Cannot fetch: sink must be a WritableStream or a function that returns one, received ${
        typeName(sink)
      }`,
    );
  }
}

function readTap<T>(tap: T): T {
  if (tap === undefined || typeof tap === "function") return tap;
  throw new TypeError(
    `Cannot fetch: tap must be a function, received ${typeName(tap)}`,
  );
}

/**
 * The request options of one {@linkcode RequestSpec}: the crawl's, with the
 * spec's fields over them. A spec that changes neither method, headers nor body
 * keeps the crawl's encoded request.
 *
 * @throws {TypeError} For an invalid method, header, body, `sink` or `tap` (that
 *   URL fails alone).
 * @throws {RangeError} For a negative `timeout`, or a `maxResponseBytes` that
 *   is not a non-negative integer or `Infinity`.
 */
/**
 * API.md: a request body of a type no request has, or any body with GET or HEAD
 * (or TRACE, RFC 9110 section 9.3.8), rejects with `TypeError` before any
 * connection opens. An array's specs are all at hand, so they are checked
 * first; an iterator's can only be checked as each is read, and fail that URL
 * alone ({@linkcode specOptions}). Only own data properties are read here: a
 * getter is read once, when its URL is.
 *
 * @throws {TypeError} Naming the first such spec's index.
 */
export function checkArrayBodies(
  source: readonly unknown[],
  shared: RequestOptions,
): void {
  for (let index = 0; index < source.length; index++) {
    const spec = source[index];
    if (typeof spec !== "object" || spec === null || spec instanceof URL) {
      continue;
    }
    const body = Object.getOwnPropertyDescriptor(spec, "body");
    const method = Object.getOwnPropertyDescriptor(spec, "method");
    if (body === undefined && method === undefined) continue;
    if (
      (body !== undefined && !("value" in body)) ||
      (method !== undefined && !("value" in method))
    ) continue;
    const m = method?.value ?? shared.method ?? "GET";
    if (typeof m !== "string") continue;
    const b = body?.value !== undefined ? body.value : shared.body;
    const problem = bodyProblem(b, m);
    if (problem !== null) {
      throw new TypeError(
        `Cannot build request for source[${index}]: ${problem}`,
      );
    }
  }
}

/** `perOrigin.delay` as a number: Infinity would hold every URL for ever. */
function finiteDelay(delay: number | undefined): number {
  const ms = nonNegative("perOrigin.delay", delay, 0);
  if (ms === Infinity) {
    throw new RangeError(
      "Cannot fetch: perOrigin.delay must be a finite non-negative number, received Infinity",
    );
  }
  return ms;
}

export function specOptions(
  spec: RequestSpec,
  shared: RequestOptions,
): RequestOptions {
  const options: RequestOptions = { ...shared };
  if (spec.timeout !== undefined) {
    options.timeout = nonNegative("timeout", spec.timeout, 0);
  }
  if (spec.maxResponseBytes !== undefined) {
    options.maxResponseBytes = byteLimit(
      "maxResponseBytes",
      spec.maxResponseBytes,
      0,
    );
  }
  readSink(spec.sink, options);
  if (spec.proxy !== undefined || spec.unixSocket !== undefined) {
    const crawl = shared[kTransport];
    options[kTransport] = {
      proxy: spec.proxy !== undefined
        ? readProxy(spec.proxy)
        : crawl?.proxy ?? null,
      unixSocket: spec.unixSocket !== undefined
        ? readUnixSocket(spec.unixSocket)
        : crawl?.unixSocket ?? null,
    };
  }
  if (spec.tap !== undefined) options.tap = readTap(spec.tap);
  if (
    spec.method === undefined && spec.headers === undefined &&
    spec.body === undefined
  ) return options;
  delete options[kRequestWriter];
  const method = validateMethod(spec.method ?? shared.method ?? "GET");
  let headers = shared.headers as Headers;
  if (spec.headers !== undefined) {
    headers = new Headers(headers);
    // By name: a field the spec gives replaces the crawl's field of that name.
    const own = normalizeHeaders(spec.headers);
    for (const name of new Set(own.keys())) headers.delete(name);
    for (const [name, value] of own) headers.append(name, value);
  }
  options.method = method;
  options.headers = headers;
  options.body = validateBody(
    spec.body !== undefined ? spec.body : shared.body ?? null,
    method,
  );
  return options;
}
