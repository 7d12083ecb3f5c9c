/**
 * One object of each class a crawl is made of, kept for the life of the
 * process, so that a crawl after major garbage collections runs the code the
 * crawls before it had optimized.
 *
 * V8 keeps the hidden class ("map") objects were built with only while some
 * object has it (and, unused, through two more major collections), and the
 * optimized code of every function that handled such objects embeds their
 * maps: a collection that drops them throws that code away. Between two
 * crawls none of a crawl's objects is alive, so a full collection then (a
 * `gc()`, a collection to reduce memory) or three ordinary ones (an
 * application allocating a lot between crawls) made the next crawl start
 * over: its first thousands of requests ran unoptimized while V8 compiled it
 * all again on its helper threads. Measured on 500-URL crawls each after a
 * full collection: 43 to 51 µs of CPU per request, 21 to 24 with these
 * specimens (20 with no collection); with 3,000,000 objects allocated between
 * crawls, V8 threw away 72 compiled functions of the crawl over 30 crawls, and
 * none with them. Each specimen is built by its class's real constructor (so
 * it has the same map) and references no caller's object and no resource. (The
 * specimen client's request bytes keep the first 128 KiB slab of `_slab.ts`
 * alive, as a spare read buffer cut from it does anyway.)
 *
 * Kept: the classes of a crawl over HTTP, bodies plain or compressed (the
 * crawl, its queues and pool, the selector, the conn, the client, the parser,
 * the decoders and their native handles). Not yet: those only TLS, proxies,
 * sinks, taps and streamed request bodies use.
 *
 * @module
 */
import { PollableConn } from "../selector/pollable_conn.ts";

const specimens: object[] = [];

/** Keeps `objects` for the life of the process. */
export function keepSpecimens(...objects: object[]): void {
  specimens.push(...objects);
}

/** Counts the lookups `refreshSpecimens` makes, so that none is optimized away. */
let touched = 0;

/**
 * Moves each specimen onto its class's current map. A field that first held a
 * small integer and then a fraction (a timestamp) gives the class a new map
 * and leaves the old one deprecated, with the specimens still on it; a
 * property lookup on an object with a deprecated map migrates it (`in` does,
 * where a plain load through a warm inline cache does not). Called when a
 * crawl ends: the first crawls are where a class's fields settle.
 */
export function refreshSpecimens(): void {
  for (const object of specimens) {
    if ("constructor" in object) touched++;
  }
}

/** A transport that never reads or writes: what a specimen conn is given. */
const INERT: Deno.Conn = {
  localAddr: { transport: "tcp", hostname: "0.0.0.0", port: 0 },
  remoteAddr: { transport: "tcp", hostname: "0.0.0.0", port: 0 },
  read: () => new Promise<number | null>(() => {}),
  write: () => new Promise<number>(() => {}),
  closeWrite: () => Promise.resolve(),
  close() {},
} as unknown as Deno.Conn;

/** An open {@linkcode PollableConn} on a transport that never reads or writes. */
export function specimenConn(): PollableConn {
  return new PollableConn(INERT);
}
