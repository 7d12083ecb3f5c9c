/**
 * Seeded property tests: whatever `modify`/`unregister`/`register` calls and recv or
 * send sizes a program picks, every byte crosses a `PollableConn` exactly once, in
 * order. Each test prints its seed; replay one with `SEED=<n>`.
 */
import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertLessOrEqual,
} from "@std/assert";
import {
  BlockingIOError,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  type PollableConn,
} from "../mod.ts";
import { type Batch, logSeed, maskOf, Rng, seeds, tcpPair } from "./_net.ts";

const SIZE = 4 * 1024 * 1024;
const MAX_ROUNDS = 400_000;
const TIME_LIMIT_MS = 10_000;
const SEEDS = seeds([1, 2, 0xc0ffee, 0xdeadbeef]);
const EVENT_CHOICES = [EVENT_READ, EVENT_WRITE, EVENT_READ | EVENT_WRITE];

/** Lets pending I/O completions and timers run. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Whether `got` equals `expected[offset, offset + got.length)`. */
function matches(
  got: Uint8Array,
  expected: Uint8Array,
  offset: number,
): boolean {
  if (offset + got.length > expected.length) return false;
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== expected[offset + i]) return false;
  }
  return true;
}

/** Asserts the batch rules for one conn: at most once, mask within its events. */
function checkBatch(batch: Batch, conn: PollableConn, events: number): number {
  let mask = 0;
  for (const [key, m] of batch) {
    assert(key.fileobj === conn, "a foreign key was reported");
    assertEquals(mask, 0, "the conn was reported twice in one batch");
    assertEquals(
      m & ~events,
      0,
      `mask ${m} outside registered events ${events}`,
    );
    assert(m !== 0);
    mask = m;
  }
  return mask;
}

/**
 * Randomly changes the registration: modify to other events, unregister, or
 * re-register. Returns the registered events (0 when unregistered).
 */
function churn(
  rng: Rng,
  sel: DefaultSelector,
  conn: PollableConn,
  events: number,
): number {
  const roll = rng.next();
  if (events === 0) {
    if (roll < 0.5) {
      const next = EVENT_CHOICES[rng.int(0, 2)]!;
      assertEquals(sel.register(conn, next).events, next);
      return next;
    }
    return 0;
  }
  if (roll < 0.08) {
    assertEquals(sel.unregister(conn).events, events);
    return 0;
  }
  if (roll < 0.25) {
    const next = EVENT_CHOICES[rng.int(0, 2)]!;
    assertEquals(sel.modify(conn, next).events, next);
    return next;
  }
  return events;
}

for (const seed of SEEDS) {
  Deno.test(`PollableConn.recv() loses no byte under random modify/unregister (seed ${seed})`, async () => {
    logSeed("recv path", seed);
    const rng = new Rng(seed);
    const expected = new Rng(seed ^ 0x5bd1e995).bytes(SIZE);
    using pair = await tcpPair();
    const { conn, peer } = pair;

    // The peer streams everything in random-sized writes, then closes.
    const writerRng = new Rng(seed + 1);
    const writer = (async () => {
      let offset = 0;
      while (offset < SIZE) {
        const n = Math.min(writerRng.size(256 * 1024), SIZE - offset);
        offset += await peer.write(expected.subarray(offset, offset + n));
      }
      peer.close();
    })();

    using sel = new DefaultSelector();
    let events = EVENT_READ;
    sel.register(conn, events);
    let received = 0;
    let eof = false;
    let rounds = 0;
    let recvCalls = 0;
    let churns = 0;
    const start = performance.now();
    for (
      ;
      !eof && rounds < MAX_ROUNDS && performance.now() - start < TIME_LIMIT_MS;
      rounds++
    ) {
      const before = events;
      events = churn(rng, sel, conn, events);
      if (events !== before) churns++;
      // Sometimes let in-flight reads complete under the new registration first.
      if (rng.chance(0.1)) await macrotask();
      const batch = await sel.select(events & EVENT_READ ? 1000 : 0);
      const mask = checkBatch(batch, conn, events);
      // Reported readable: recv() must return data or end of stream, never block.
      // Otherwise recv() sometimes anyway: a read completed meanwhile is served.
      if (!(mask & EVENT_READ) && !rng.chance(0.3)) continue;
      const reads = rng.int(1, 4);
      for (let i = 0; i < reads && !eof; i++) {
        const max = rng.size(rng.chance(0.5) ? 4096 : 65536);
        let chunk: Uint8Array | null;
        try {
          chunk = conn.recv(max);
        } catch (e) {
          if (!(e instanceof BlockingIOError)) throw e;
          assert(
            i > 0 || !(mask & EVENT_READ),
            `round ${rounds}: reported readable but recv() would block`,
          );
          break;
        }
        recvCalls++;
        if (chunk === null) {
          eof = true;
          break;
        }
        assertGreaterOrEqual(chunk.length, 1);
        assertLessOrEqual(chunk.length, max);
        assert(
          matches(chunk, expected, received),
          `round ${rounds}: ${chunk.length} bytes at offset ${received} differ from the stream`,
        );
        received += chunk.length;
      }
    }
    await writer;
    console.log(
      `  ${rounds} rounds, ${recvCalls} recv() calls, ${churns} registration changes, ${
        Math.round(performance.now() - start)
      } ms`,
    );
    assert(eof, `no end of stream after ${rounds} rounds (${received} bytes)`);
    assertEquals(received, SIZE);
  });

  Deno.test(`PollableConn.send() loses no byte under random modify/unregister (seed ${seed})`, async () => {
    logSeed("send path", seed);
    const rng = new Rng(seed);
    const expected = new Rng(seed ^ 0x27d4eb2d).bytes(SIZE);
    using pair = await tcpPair();
    const { conn, peer } = pair;

    // The peer reads everything in random-sized reads, pausing now and then.
    const readerRng = new Rng(seed + 2);
    const reader = (async () => {
      const buf = new Uint8Array(256 * 1024);
      let got = 0;
      let reads = 0;
      while (true) {
        const n = await peer.read(buf.subarray(0, readerRng.size(buf.length)));
        if (n === null) break;
        if (!matches(buf.subarray(0, n), expected, got)) {
          throw new Error(
            `peer: ${n} bytes at offset ${got} differ from the stream`,
          );
        }
        got += n;
        if (++reads % 64 === 0) {
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        if (got > SIZE) break;
      }
      return got;
    })();

    using sel = new DefaultSelector();
    let events = EVENT_WRITE;
    sel.register(conn, events);
    let sent = 0;
    let rounds = 0;
    let sendCalls = 0;
    let blocked = 0;
    const scratch = new Uint8Array(65536 * 2);
    const start = performance.now();
    for (
      ;
      sent < SIZE && rounds < MAX_ROUNDS &&
      performance.now() - start < TIME_LIMIT_MS;
      rounds++
    ) {
      events = churn(rng, sel, conn, events);
      if (rng.chance(0.1)) await macrotask();
      const batch = await sel.select(events & EVENT_WRITE ? 1000 : 0);
      const mask = checkBatch(batch, conn, events);
      if (!(mask & EVENT_WRITE) && !rng.chance(0.3)) continue;
      const writes = rng.int(1, 4);
      for (let i = 0; i < writes && sent < SIZE; i++) {
        const n = Math.min(rng.size(scratch.length), SIZE - sent);
        // Send from a scratch buffer, then scribble over it: the conn must have
        // copied what it accepted.
        const chunk = scratch.subarray(0, n);
        chunk.set(expected.subarray(sent, sent + n));
        let accepted: number;
        try {
          accepted = conn.send(chunk);
        } catch (e) {
          if (!(e instanceof BlockingIOError)) throw e;
          assert(
            i > 0 || !(mask & EVENT_WRITE),
            `round ${rounds}: reported writable but send() would block`,
          );
          blocked++;
          break;
        }
        chunk.fill(0xee);
        sendCalls++;
        assertGreaterOrEqual(accepted, 1);
        assertLessOrEqual(accepted, n);
        sent += accepted;
      }
    }
    assertEquals(sent, SIZE, `only ${sent} bytes sent after ${rounds} rounds`);
    // close() flushes what was accepted, then the peer sees end of stream.
    if (events !== 0) sel.unregister(conn);
    conn.close();
    const got = await reader;
    console.log(
      `  ${rounds} rounds, ${sendCalls} send() calls, ${blocked} blocked, ${
        Math.round(performance.now() - start)
      } ms`,
    );
    assertEquals(got, SIZE);
  });
}

Deno.test("PollableConn echoes a stream both ways at once under random modify/unregister", async () => {
  const seed = seeds([7])[0]!;
  logSeed("duplex", seed);
  const rng = new Rng(seed);
  const size = 2 * 1024 * 1024;
  const expected = new Rng(seed ^ 0x1b873593).bytes(size);
  using pair = await tcpPair();
  const { conn, peer } = pair;

  // The peer echoes every byte back, and closes after the last one.
  const echo = (async () => {
    const buf = new Uint8Array(64 * 1024);
    let total = 0;
    while (total < size) {
      const n = await peer.read(buf);
      if (n === null) break;
      let offset = 0;
      while (offset < n) offset += await peer.write(buf.subarray(offset, n));
      total += n;
    }
    peer.close();
    return total;
  })();

  using sel = new DefaultSelector();
  let events = EVENT_READ | EVENT_WRITE;
  sel.register(conn, events);
  let sent = 0;
  let received = 0;
  let eof = false;
  const start = performance.now();
  let rounds = 0;
  for (
    ;
    !eof && rounds < MAX_ROUNDS && performance.now() - start < TIME_LIMIT_MS;
    rounds++
  ) {
    events = churn(rng, sel, conn, events);
    const mask = checkBatch(await sel.select(events ? 1000 : 0), conn, events);
    if (sent < size && (mask & EVENT_WRITE || rng.chance(0.2))) {
      const n = Math.min(rng.size(100_000), size - sent);
      try {
        sent += conn.send(expected.subarray(sent, sent + n));
      } catch (e) {
        if (!(e instanceof BlockingIOError)) throw e;
        assert(
          !(mask & EVENT_WRITE),
          "reported writable but send() would block",
        );
      }
    }
    if (mask & EVENT_READ || rng.chance(0.2)) {
      try {
        const chunk = conn.recv(rng.size(65536));
        if (chunk === null) {
          eof = true;
        } else {
          assert(
            matches(chunk, expected, received),
            `echo differs at ${received}`,
          );
          received += chunk.length;
        }
      } catch (e) {
        if (!(e instanceof BlockingIOError)) throw e;
        assert(
          !(mask & EVENT_READ),
          "reported readable but recv() would block",
        );
      }
    }
  }
  console.log(
    `  ${rounds} rounds, ${Math.round(performance.now() - start)} ms`,
  );
  assertEquals(received, size);
  assert(eof);
  assertEquals(await echo, size);
});

Deno.test("PollableConn reads ahead into a bounded buffer while recv() is not called", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  // Far more than the kernel's loopback buffers can hold.
  const size = 48 * 1024 * 1024;
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) data[i] = (i >>> 12) & 0xff;
  let written = 0;
  const writer = (async () => {
    while (written < size) {
      written += await peer.write(data.subarray(written, written + (1 << 20)));
    }
  })();
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  // Readable, but nobody calls recv(): let the background reads run a while.
  for (let i = 0; i < 20; i++) {
    assertEquals(maskOf(await sel.select(1000), conn), EVENT_READ);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert(written < size, "the conn read 48 MiB ahead of recv()");
  // Now drain: every byte arrives, in order.
  let received = 0;
  const start = performance.now();
  for (
    let round = 0;
    received < size && round < 200_000 && performance.now() - start < 10_000;
    round++
  ) {
    const mask = maskOf(await sel.select(1000), conn);
    if (!(mask & EVENT_READ)) continue;
    const chunk = conn.recv()!;
    for (let i = 0; i < chunk.length; i++) {
      const at = received + i;
      if ((at & 4095) === 0 && chunk[i] !== ((at >>> 12) & 0xff)) {
        throw new Error(`byte ${at} differs`);
      }
    }
    received += chunk.length;
  }
  await writer;
  assertEquals(received, size);
});
