import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertInstanceOf,
  assertLess,
  assertLessOrEqual,
  assertNotEquals,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { delay } from "@std/async";
import {
  ALL_EVENTS,
  BlockingIOError,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  KeyError,
  type Pollable,
  PollableConn,
  type PollableListener,
  Selector,
  type SelectorKey,
} from "../mod.ts";
import {
  type Batch,
  bytesEqual,
  closeQuietly,
  concat,
  fillUntilBlocked,
  listen,
  maskOf,
  portOf,
  readExactly,
  readyFor,
  selectUntil,
  tcpPair,
  timersArmed,
  within,
} from "./_net.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Asserts the shape rules of a batch: each key once, masks non-empty subsets. */
function assertWellFormed(batch: Batch): void {
  const seen = new Set<Pollable>();
  for (const [key, mask] of batch) {
    assert(!seen.has(key.fileobj), `fd ${key.fd} reported twice in one batch`);
    seen.add(key.fileobj);
    assertNotEquals(mask, 0);
    assertEquals(mask & ~key.events, 0, "mask outside the registered events");
    assert(Object.isFrozen(key));
  }
}

// ---------------------------------------------------------------------------
// Events and classes

Deno.test("EVENT_READ and EVENT_WRITE are the bit flags 1 and 2", () => {
  assertStrictEquals(EVENT_READ, 1);
  assertStrictEquals(EVENT_WRITE, 2);
  assertStrictEquals(ALL_EVENTS, EVENT_READ | EVENT_WRITE);
});

Deno.test("DefaultSelector is the same class as Selector", () => {
  assertStrictEquals(DefaultSelector, Selector);
  using sel = new DefaultSelector();
  assert(sel instanceof Selector);
});

// ---------------------------------------------------------------------------
// register

Deno.test("Selector.register() returns a frozen key {fileobj, fd, events, data}", () => {
  using sel = new DefaultSelector<{ id: number }>();
  using listener = listen();
  const data = { id: 7 };
  const key = sel.register(listener, EVENT_READ, data);
  assertStrictEquals(key.fileobj, listener);
  assertStrictEquals(key.fd, listener.fd);
  assertStrictEquals(key.events, EVENT_READ);
  assertStrictEquals(key.data, data);
  assert(Object.isFrozen(key));
  assertEquals(Object.keys(key).sort(), ["data", "events", "fd", "fileobj"]);
  assertThrows(() => {
    (key as { events: number }).events = EVENT_WRITE;
  }, TypeError);
  assertStrictEquals(key.events, EVENT_READ);
  sel.unregister(listener);
});

Deno.test("Selector.register() sets data to undefined when omitted", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  const key = sel.register(listener, EVENT_READ);
  assertStrictEquals(key.data, undefined);
  assert("data" in key);
});

Deno.test("Selector.register() accepts EVENT_READ, EVENT_WRITE and both", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  using a = PollableConn.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  using b = PollableConn.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  using c = PollableConn.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  assertEquals(sel.register(a, EVENT_READ).events, 1);
  assertEquals(sel.register(b, EVENT_WRITE).events, 2);
  assertEquals(sel.register(c, EVENT_READ | EVENT_WRITE).events, 3);
  // Let the three connects finish before closing, so no op is left in flight.
  await selectUntil(sel, () => b.remoteAddr !== null && c.remoteAddr !== null);
  await selectUntil(sel, () => a.remoteAddr !== null, { timeout: 2000 });
  for (const p of [a, b, c]) sel.unregister(p);
});

Deno.test("Selector.register() throws KeyError for a pollable registered twice", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ, "first");
  const e = assertThrows(
    () => sel.register(listener, EVENT_READ, "second"),
    KeyError,
    "already registered",
  );
  assertInstanceOf(e, Error);
  assertStrictEquals(e.name, "KeyError");
  assertStrictEquals(sel.getKey(listener).data, "first");
});

Deno.test('Selector.register() throws RangeError for events 0, 4, 1.5, -1, NaN, "1"', () => {
  using sel = new DefaultSelector();
  using listener = listen();
  for (
    const events of [0, 4, 5, 8, 1.5, -1, NaN, Infinity, "1", null, undefined]
  ) {
    assertThrows(
      () => sel.register(listener, events as number),
      RangeError,
      "events",
    );
  }
  assertEquals(sel.getMap().size, 0);
});

Deno.test("Selector.register() and modify() throw RangeError for events that only match in the low 32 bits", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  // Each of these is 1, 2 or 3 once truncated to 32 bits (as `|`, `&` and `>>>` do).
  const truncatedAliases = [2 ** 32 + 1, 2 ** 32 + 2, 2 ** 32 + 3, 2 ** 33 + 1];
  for (const events of truncatedAliases) {
    assertThrows(() => sel.register(listener, events), RangeError, "events");
  }
  assertEquals(sel.getMap().size, 0);
  const key = sel.register(listener, EVENT_READ);
  for (const events of truncatedAliases) {
    assertThrows(() => sel.modify(listener, events), RangeError, "events");
  }
  assertStrictEquals(sel.getKey(listener), key);
});

Deno.test("Selector.register() throws TypeError for a foreign object, null, a number or a raw Deno.Conn", async () => {
  using sel = new DefaultSelector();
  using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using raw = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  using _accepted = await server.accept();
  const lookalike = { fd: 99, closed: false, close() {} };
  for (const fileobj of [{}, null, undefined, 3, "x", lookalike, raw, server]) {
    assertThrows(
      () => sel.register(fileobj as unknown as Pollable, EVENT_READ),
      TypeError,
      "pollable",
    );
  }
  assertEquals(sel.getMap().size, 0);
});

Deno.test("Selector.register() of a pollable made by another copy of the module throws TypeError saying so", async () => {
  // Two versions loaded in one process (as bench/ab.ts does): each selector
  // knows its own copy's pollables only, and the message must not read
  // "expected a pollable ..., received PollableListener" with nothing more.
  const dir = await Deno.makeTempDir({ prefix: "selectors-copy-" });
  try {
    const root = new URL("../", import.meta.url);
    const copy = async (rel: string) => {
      for await (const entry of Deno.readDir(new URL(rel, root))) {
        const path = `${rel}/${entry.name}`;
        if (entry.isDirectory) {
          await Deno.mkdir(`${dir}/${path}`);
          await copy(path);
        } else await Deno.copyFile(new URL(path, root), `${dir}/${path}`);
      }
    };
    for (const sub of ["selector", "client"]) {
      await Deno.mkdir(`${dir}/${sub}`);
      await copy(sub);
    }
    await Deno.copyFile(new URL("mod.ts", root), `${dir}/mod.ts`);
    const other = await import(`file://${dir}/mod.ts`);
    using sel = new DefaultSelector();
    using theirs = other.PollableListener.listen({
      hostname: "127.0.0.1",
      port: 0,
    });
    const error = assertThrows(
      () => sel.register(theirs as Pollable, EVENT_READ),
      TypeError,
      "received PollableListener from another copy of this module",
    );
    assert(error instanceof TypeError);
    // A foreign object of another name says nothing of copies.
    assertThrows(
      () => sel.register(new (class Other {})() as unknown as Pollable, 1),
      TypeError,
      "received Other",
    );
    assertEquals(sel.getMap().size, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Selector.register() and modify() check in Python's order: register the mask before the object, modify the registration before the mask", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  // Python: register(None, 0) is ValueError (Invalid events), modify of an
  // unregistered object is KeyError whatever the mask.
  assertThrows(
    () => sel.register(null as unknown as Pollable, 0),
    RangeError,
    "events",
  );
  const closed = listen();
  closed.close();
  assertThrows(() => sel.register(closed, 8), RangeError, "events");
  for (const events of [0, 8, EVENT_READ]) {
    assertThrows(
      () => sel.modify(listener, events),
      KeyError,
      "not registered",
    );
  }
  assertEquals(sel.getMap().size, 0);
});

Deno.test("Selector.register() throws RangeError for a closed pollable", () => {
  using sel = new DefaultSelector();
  const listener = listen();
  listener.close();
  assertThrows(() => sel.register(listener, EVENT_READ), RangeError, "closed");
});

Deno.test("Selector.register() of a registered pollable closed since throws KeyError, as Python", () => {
  using sel = new DefaultSelector();
  const listener = listen();
  sel.register(listener, EVENT_READ);
  listener.close();
  // Python's register() finds the old key of a closed registered socket.
  assertThrows(() => sel.register(listener, EVENT_READ), KeyError, "already");
  sel.unregister(listener);
  assertThrows(() => sel.register(listener, EVENT_READ), RangeError, "closed");
});

// ---------------------------------------------------------------------------
// unregister

Deno.test("Selector.unregister() returns the key that was removed", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  const key = sel.register(listener, EVENT_READ, "d");
  assertStrictEquals(sel.unregister(listener), key);
  assertEquals(sel.getMap().size, 0);
  assertThrows(() => sel.getKey(listener), KeyError);
});

Deno.test("Selector.unregister() throws KeyError for an unknown pollable or fd", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  const e = assertThrows(
    () => sel.unregister(listener),
    KeyError,
    "not registered",
  );
  assertStrictEquals(e.name, "KeyError");
  assertThrows(() => sel.unregister(12345678), KeyError, "12345678");
  sel.register(listener, EVENT_READ);
  sel.unregister(listener);
  assertThrows(() => sel.unregister(listener), KeyError, "not registered");
});

Deno.test("Selector.unregister() works on a pollable closed after registering", () => {
  using sel = new DefaultSelector();
  const listener = listen();
  const key = sel.register(listener, EVENT_READ);
  listener.close();
  assertStrictEquals(sel.unregister(listener), key);
  assertEquals(sel.getMap().size, 0);
});

Deno.test("Selector.unregister() accepts the fd number", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  const key = sel.register(listener, EVENT_READ);
  assertStrictEquals(sel.getKey(listener.fd), key);
  assertStrictEquals(sel.unregister(listener.fd), key);
  assertThrows(() => sel.getKey(listener.fd), KeyError);
  assertThrows(() => sel.getKey(listener), KeyError);
});

Deno.test("Selector.unregister() lets the pollable be registered again", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ, 1);
  sel.unregister(listener);
  const key = sel.register(listener, EVENT_READ, 2);
  assertStrictEquals(key.data, 2);
});

// ---------------------------------------------------------------------------
// modify

Deno.test("Selector.modify() returns a new key and leaves the old one unchanged", () => {
  using sel = new DefaultSelector<string>();
  using listener = listen();
  const before = sel.register(listener, EVENT_READ, "a");
  const after = sel.modify(listener, EVENT_READ | EVENT_WRITE, "b");
  assertNotEquals(before, after);
  assert(before !== after);
  assertEquals(
    { fd: before.fd, events: before.events, data: before.data },
    { fd: listener.fd, events: EVENT_READ, data: "a" },
  );
  assertEquals(
    { fd: after.fd, events: after.events, data: after.data },
    { fd: listener.fd, events: EVENT_READ | EVENT_WRITE, data: "b" },
  );
  assertStrictEquals(after.fileobj, listener);
  assert(Object.isFrozen(after));
  assertStrictEquals(sel.getKey(listener), after);
  assertStrictEquals(sel.getMap().get(listener), after);
});

Deno.test("Selector.modify() resets data to undefined when omitted", () => {
  using sel = new DefaultSelector<string | undefined>();
  using listener = listen();
  sel.register(listener, EVENT_READ, "data");
  const key = sel.modify(listener, EVENT_READ);
  assertStrictEquals(key.data, undefined);
  assertStrictEquals(sel.getKey(listener).data, undefined);
});

Deno.test("Selector.modify() accepts the fd number", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  const key = sel.modify(listener.fd, EVENT_WRITE, "x");
  assertStrictEquals(key.fileobj, listener);
  assertStrictEquals(key.events, EVENT_WRITE);
});

Deno.test("Selector.modify() throws KeyError for an unknown pollable and RangeError for bad events", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  const e = assertThrows(
    () => sel.modify(listener, EVENT_READ),
    KeyError,
    "not registered",
  );
  assertStrictEquals(e.name, "KeyError");
  assertThrows(
    () => sel.modify(424242, EVENT_READ),
    KeyError,
    "not registered",
  );
  const key = sel.register(listener, EVENT_READ, "keep");
  for (const events of [0, 4, 1.5, -1, NaN, "1"]) {
    assertThrows(
      () => sel.modify(listener, events as number),
      RangeError,
      "events",
    );
  }
  // A failed modify leaves the registration as it was.
  assertStrictEquals(sel.getKey(listener), key);
});

Deno.test("Selector.modify() works on a pollable closed after registering", () => {
  using sel = new DefaultSelector();
  const listener = listen();
  sel.register(listener, EVENT_READ);
  listener.close();
  const key = sel.modify(listener, EVENT_WRITE, 1);
  assertStrictEquals(key.events, EVENT_WRITE);
  assertStrictEquals(sel.unregister(listener), key);
});

// ---------------------------------------------------------------------------
// wakeup

Deno.test("Selector.wakeup() from a timer ends a select() with no timeout", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ); // nobody connects: never ready
  const timer = setTimeout(() => sel.wakeup(), 30);
  const start = performance.now();
  try {
    const batch = await within(sel.select(), 5_000, "select() after wakeup()");
    assertEquals(batch, []);
  } finally {
    clearTimeout(timer);
  }
  const elapsed = performance.now() - start;
  assertGreaterOrEqual(elapsed, 25);
  assertLess(elapsed, 1_000);
});

Deno.test("Selector.wakeup() ends a select() with a long timeout at once", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  const pending = sel.select(60_000);
  const start = performance.now();
  sel.wakeup();
  assertEquals(
    await within(pending, 5_000, "select(60_000) after wakeup()"),
    [],
  );
  assertLess(performance.now() - start, 500);
});

Deno.test("Selector.wakeup() returns what is ready with the batch it ends", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  using idle = listen();
  sel.register(idle, EVENT_READ);
  sel.register(listener, EVENT_READ);
  using _client = await Deno.connect({ port: portOf(listener) });
  // Let the accept complete, so the listener is ready before the wakeup.
  await selectUntil(sel, readyFor(listener, EVENT_READ));
  sel.wakeup();
  const batch = await within(sel.select(), 5_000, "select() after wakeup()");
  assertEquals(maskOf(batch, listener), EVENT_READ);
  assertEquals(maskOf(batch, idle), 0);
  using _conn = listener.accept();
});

Deno.test("Selector.wakeup() before select() makes the next one return at once, once", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  sel.wakeup();
  sel.wakeup(); // several count as one
  const start = performance.now();
  assertEquals(await sel.select(10_000), []);
  assertLess(performance.now() - start, 500);
  // Used up: the next select() waits for its timeout again.
  const again = performance.now();
  assertEquals(await sel.select(50), []);
  assertGreaterOrEqual(performance.now() - again, 45);
});

Deno.test("Selector.wakeup() before a select() with nothing registered returns [] after one turn", async () => {
  using sel = new DefaultSelector();
  sel.wakeup();
  assertEquals(await sel.select(10_000), []);
});

Deno.test("Selector.wakeup() during a select() that finds keys ready is used up by it", async () => {
  using sel = new DefaultSelector();
  using pair = await tcpPair();
  sel.register(pair.conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(pair.conn, EVENT_WRITE));
  // The conn is ready, so this select() first yields a turn: wake it meanwhile.
  const pending = within(sel.select(), 5_000, "select() with a ready key");
  sel.wakeup();
  assertEquals(maskOf(await pending, pair.conn), EVENT_WRITE);
  sel.modify(pair.conn, EVENT_READ);
  const start = performance.now();
  assertEquals(await sel.select(50), []);
  assertGreaterOrEqual(performance.now() - start, 45);
});

Deno.test("Selector.wakeup() after close() does nothing", async () => {
  const sel = new DefaultSelector();
  sel.close();
  sel.wakeup();
  await assertRejects(() => sel.select(), Error, "closed");
});

// ---------------------------------------------------------------------------
// select timeouts

Deno.test("Selector.select() with nothing registered and no timeout resolves [] at once", async () => {
  using sel = new DefaultSelector();
  const start = performance.now();
  assertEquals(await within(sel.select(), 5_000, "select()"), []);
  assertEquals(await within(sel.select(null), 5_000, "select(null)"), []);
  assertEquals(
    await within(sel.select(undefined), 5_000, "select(undefined)"),
    [],
  );
  assertLess(performance.now() - start, 1000);
});

Deno.test("Selector.select() with nothing registered lets a 50 ms timer fire in a `while (true)` loop", async () => {
  using sel = new DefaultSelector();
  let fired = false;
  const timer = setTimeout(() => fired = true, 50);
  const start = performance.now();
  let rounds = 0;
  try {
    // The literal port of Python's `while True: sel.select()`, bounded: without a
    // turn of the event loop per select() the timer never fires.
    while (!fired && rounds < 1_000_000 && performance.now() - start < 3_000) {
      assertEquals(
        await within(sel.select(), 5_000, `select() #${rounds}`),
        [],
      );
      rounds++;
    }
  } finally {
    clearTimeout(timer);
  }
  assert(fired, `the timer did not fire in ${rounds} selects`);
  assertLess(performance.now() - start, 1_000);
});

Deno.test("Selector.select() with 0 or a negative timeout polls", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  for (const timeout of [0, -1, -1000, -Infinity]) {
    const start = performance.now();
    assertEquals(await sel.select(timeout), []);
    assertLess(performance.now() - start, 1000);
  }
});

Deno.test("Selector.select() with a positive timeout resolves [] on expiry, not earlier", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  for (const timeout of [1, 20, 50]) {
    const start = performance.now();
    assertEquals(await sel.select(timeout), []);
    const elapsed = performance.now() - start;
    assertGreaterOrEqual(elapsed, timeout - 1);
    assertLess(elapsed, 1000);
  }
});

Deno.test("Selector.select() with a positive timeout and nothing registered waits", async () => {
  using sel = new DefaultSelector();
  const start = performance.now();
  assertEquals(await sel.select(50), []);
  const elapsed = performance.now() - start;
  assertGreaterOrEqual(elapsed, 49);
  assertLess(elapsed, 1000);
});

Deno.test("Selector.select() with no timeout waits until a key is ready", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ, "l");
  let settled = false;
  const pending = sel.select().then((b) => {
    settled = true;
    return b;
  });
  await delay(50);
  assert(!settled, "select() resolved with nothing ready");
  using _client = await Deno.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  const batch = await within(pending, 5_000, "select() after a connect");
  assertEquals(batch.length, 1);
  assertStrictEquals(batch[0]![0].fileobj, listener);
  assertStrictEquals(batch[0]![1], EVENT_READ);
  using _conn = listener.accept();
});

Deno.test("Selector.select() with null timeout waits until a key is ready", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  const pending = sel.select(null);
  using _client = await Deno.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  const batch = await within(pending, 5_000, "select(null) after a connect");
  assertEquals(maskOf(batch, listener), EVENT_READ);
  using _conn = listener.accept();
});

Deno.test("Selector.select() rejects a non-number timeout with TypeError, NaN with RangeError", async () => {
  using sel = new DefaultSelector();
  await assertRejects(
    () => sel.select("10" as unknown as number),
    TypeError,
    "timeout",
  );
  // Python's select(float("nan")) raises ValueError.
  await within(
    assertRejects(() => sel.select(NaN), RangeError, "timeout"),
    5_000,
    "select(NaN)",
  );
  // The selector is still usable.
  assertEquals(await sel.select(0), []);
});

Deno.test("Selector.select() rejects a second concurrent call", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  const first = sel.select(100);
  await assertRejects(() => sel.select(0), Error, "pending");
  await assertRejects(() => sel.select(), Error, "pending");
  assertEquals(await first, []);
  // Once the first settled, select() works again.
  assertEquals(await sel.select(0), []);
});

Deno.test("Selector.select() reports a ready key with its registered data", async () => {
  using pair = await tcpPair();
  const { conn } = pair;
  using sel = new DefaultSelector<string>();
  sel.register(conn, EVENT_WRITE, "w");
  const batch = await selectUntil(sel, readyFor(conn, EVENT_WRITE));
  assertWellFormed(batch);
  assertEquals(batch.length, 1);
  const [key, mask] = batch[0]!;
  assertStrictEquals(key, sel.getKey(conn));
  assertStrictEquals(key.data, "w");
  assertStrictEquals(mask, EVENT_WRITE);
});

// ---------------------------------------------------------------------------
// getKey / getMap

Deno.test("Selector.getKey() returns the key by pollable or fd and throws KeyError otherwise", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  using other = listen();
  const e = assertThrows(
    () => sel.getKey(listener),
    KeyError,
    "not registered",
  );
  assertStrictEquals(e.name, "KeyError");
  const key = sel.register(listener, EVENT_READ, 5);
  assertStrictEquals(sel.getKey(listener), key);
  assertStrictEquals(sel.getKey(listener.fd), key);
  assertThrows(() => sel.getKey(other), KeyError, `fd ${other.fd}`);
  assertThrows(() => sel.getKey(other.fd), KeyError);
  assertThrows(() => sel.getKey({} as Pollable), KeyError);
  assertThrows(() => sel.getKey(null as unknown as Pollable), KeyError);
});

Deno.test("Selector.getMap() is a live view of the registrations, looked up by pollable or fd", () => {
  using sel = new DefaultSelector();
  const map = sel.getMap();
  assert(map instanceof Map);
  assertEquals(map.size, 0);
  using a = listen();
  using b = listen();
  const ka = sel.register(a, EVENT_READ, "a");
  const kb = sel.register(b, EVENT_READ, "b");
  assertEquals(map.size, 2);
  assertStrictEquals(map.get(a), ka);
  assertStrictEquals(map.get(b), kb);
  assert(map.has(a));
  assertEquals([...map.keys()].sort((x, y) => x.fd - y.fd), [a, b]);
  assertEquals([...map.values()].map((k) => k.data).sort(), ["a", "b"]);
  const kb2 = sel.modify(b, EVENT_WRITE);
  assertStrictEquals(map.get(b), kb2);
  sel.unregister(a);
  assertEquals(map.size, 1);
  assert(!map.has(a));
  assertStrictEquals(sel.getMap().get(b), kb2);
  // By fd too, as Python's get_map()[fd] and `fd in get_map()`.
  assertStrictEquals(map.get(b.fd), kb2);
  assert(map.has(b.fd));
  assert(!map.has(a.fd));
  assertEquals(map.get(a.fd), undefined);
  assertEquals(map.get(-1), undefined);
});

Deno.test("Selector.getMap() set, delete and clear throw TypeError", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  const key = sel.register(listener, EVENT_READ);
  const map = sel.getMap();
  assertThrows(() => map.set(listener, key), TypeError, "read-only");
  assertThrows(() => map.delete(listener), TypeError, "read-only");
  assertThrows(() => map.clear(), TypeError, "read-only");
  assertEquals(map.size, 1);
  assertStrictEquals(sel.getKey(listener), key);
});

// ---------------------------------------------------------------------------
// close

Deno.test("Selector.close() resolves a pending select() with []", async () => {
  const sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  const pending = sel.select();
  await delay(10);
  const start = performance.now();
  sel.close();
  assertEquals(await within(pending, 5_000, "select() after close()"), []);
  assertLess(performance.now() - start, 1000);
});

Deno.test("Selector.close() resolves a pending select() with a timeout with []", async () => {
  const sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  const start = performance.now();
  const pending = sel.select(60_000);
  await delay(10);
  sel.close();
  assertEquals(
    await within(pending, 5_000, "select(60_000) after close()"),
    [],
  );
  assertLess(performance.now() - start, 1000);
});

Deno.test('Selector.close() makes every later call throw an Error mentioning "closed"', async () => {
  const sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  sel.close();
  assertThrows(() => sel.register(listener, EVENT_READ), Error, "closed");
  assertThrows(() => sel.unregister(listener), Error, "closed");
  assertThrows(() => sel.modify(listener, EVENT_READ), Error, "closed");
  assertThrows(() => sel.getKey(listener), Error, "closed");
  assertThrows(() => sel.getMap(), Error, "closed");
  await assertRejects(() => sel.select(), Error, "closed");
  await assertRejects(() => sel.select(0), Error, "closed");
  await assertRejects(() => sel.select(10), Error, "closed");
  // Not a KeyError: the selector is closed, not the key unknown.
  const e = assertThrows(() => sel.getKey(listener), Error);
  assert(!(e instanceof KeyError));
});

Deno.test("Selector.close() a second time does nothing", () => {
  const sel = new DefaultSelector();
  sel.close();
  sel.close();
  sel[Symbol.dispose]();
});

Deno.test("Selector.close() leaves the registered pollables open and usable", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using listener = listen();
  const sel = new DefaultSelector();
  sel.register(conn, EVENT_READ | EVENT_WRITE);
  sel.register(listener, EVENT_READ);
  sel.close();
  assert(!conn.closed);
  assert(!listener.closed);
  // Both still work with another selector.
  using sel2 = new DefaultSelector();
  sel2.register(conn, EVENT_READ | EVENT_WRITE);
  sel2.register(listener, EVENT_READ);
  await selectUntil(sel2, readyFor(conn, EVENT_WRITE));
  assertEquals(conn.send("ping"), 4);
  assertEquals(decoder.decode(await readExactly(peer, 4)), "ping");
  await peer.write(encoder.encode("pong"));
  await selectUntil(sel2, readyFor(conn, EVENT_READ));
  assertEquals(decoder.decode(conn.recv()!), "pong");
  using _client = await Deno.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  await selectUntil(sel2, readyFor(listener, EVENT_READ));
  using _accepted = listener.accept();
});

Deno.test("Selector[Symbol.dispose]() closes it, so `using` works", async () => {
  let outer: Selector | undefined;
  {
    using sel = new DefaultSelector();
    outer = sel;
    assertEquals(await sel.select(0), []);
  }
  assertThrows(() => outer.getMap(), Error, "closed");
  await assertRejects(() => outer.select(0), Error, "closed");
});

// ---------------------------------------------------------------------------
// Level-triggering

Deno.test("Selector.select() keeps reporting a conn after a partial recv (level-triggered)", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  const payload = encoder.encode("0123456789");
  await peer.write(payload);
  // Wait until all ten bytes are buffered (they may arrive in pieces).
  const got: number[] = [];
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  got.push(...conn.recv(1)!);
  for (let round = 0; round < 200 && got.length < 10; round++) {
    const batch = await sel.select(2000);
    assertWellFormed(batch);
    // Bytes remain, so the conn must be reported on every select().
    assertEquals(maskOf(batch, conn), EVENT_READ, `round ${round}`);
    got.push(...conn.recv(1)!);
  }
  assertEquals(got, [...payload]);
  assertThrows(() => conn.recv(), BlockingIOError);
  assertEquals(await sel.select(20), []);
});

Deno.test("Selector.select() reports a listener until the waiting connection is accepted", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  using _client = await Deno.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  await selectUntil(sel, readyFor(listener, EVENT_READ));
  for (let i = 0; i < 5; i++) {
    const batch = await sel.select(0);
    assertWellFormed(batch);
    assertEquals(maskOf(batch, listener), EVENT_READ);
  }
  using accepted = listener.accept();
  assert(accepted instanceof PollableConn);
  assertEquals(await sel.select(20), []);
});

Deno.test("Selector.select() always reports EVENT_WRITE for an idle connected conn", async () => {
  using pair = await tcpPair();
  using sel = new DefaultSelector();
  sel.register(pair.conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(pair.conn, EVENT_WRITE));
  for (let i = 0; i < 20; i++) {
    const timeout = i % 2 === 0 ? 0 : null;
    const batch = await within(
      sel.select(timeout),
      5_000,
      `select(${timeout})`,
    );
    assertEquals(batch.length, 1);
    assertEquals(maskOf(batch, pair.conn), EVENT_WRITE);
  }
});

Deno.test("Selector.select() reports masks within the registered events, each key once", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(conn, EVENT_WRITE);
  sel.register(listener, EVENT_READ);
  await peer.write(encoder.encode("data"));
  using _client = await Deno.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  // Readable data is buffered only while EVENT_READ is registered; register both.
  sel.modify(conn, EVENT_READ | EVENT_WRITE);
  const both = await selectUntil(
    sel,
    (b) => maskOf(b, conn) === ALL_EVENTS && maskOf(b, listener) === EVENT_READ,
  );
  assertWellFormed(both);
  assertEquals(both.length, 2);
  // Registered for WRITE only: the buffered data is not reported.
  sel.modify(conn, EVENT_WRITE);
  for (let i = 0; i < 5; i++) {
    const batch = await sel.select(0);
    assertWellFormed(batch);
    assertEquals(maskOf(batch, conn), EVENT_WRITE);
  }
  // Registered for READ only: the always-ready write side is not reported.
  sel.modify(conn, EVENT_READ);
  for (let i = 0; i < 5; i++) {
    const batch = await sel.select(0);
    assertWellFormed(batch);
    assertEquals(maskOf(batch, conn), EVENT_READ);
  }
  assertEquals(decoder.decode(conn.recv()!), "data");
  using _accepted = listener.accept();
});

Deno.test("Selector.select() batches many ready keys, each exactly once", async () => {
  using sel = new DefaultSelector<number>();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: PollableConn[] = [];
  const peers: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const conn = PollableConn.connect(listener.addr);
      conns.push(conn);
      peers.push(await listener.accept());
      sel.register(conn, EVENT_READ | EVENT_WRITE, i);
    }
    await Promise.all(peers.map((p, i) => p.write(encoder.encode(`#${i}`))));
    const batch = await selectUntil(
      sel,
      (b) => b.length === 20 && b.every(([, m]) => m === ALL_EVENTS),
    );
    assertWellFormed(batch);
    assertEquals(batch.map(([k]) => k.data).sort((a, b) => a - b), [
      ...Array(20).keys(),
    ]);
    for (const [key] of batch) {
      const conn = key.fileobj as PollableConn;
      assertEquals(decoder.decode(conn.recv()!), `#${key.data}`);
    }
  } finally {
    for (const c of conns) c.close();
    for (const p of peers) closeQuietly(p);
  }
});

Deno.test("Selector.select() never reports a closed pollable", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(conn, EVENT_READ | EVENT_WRITE);
  sel.register(listener, EVENT_READ);
  await peer.write(encoder.encode("x"));
  using _client = await Deno.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  await selectUntil(
    sel,
    (b) => maskOf(b, conn) === ALL_EVENTS && maskOf(b, listener) === EVENT_READ,
  );
  conn.close();
  listener.close();
  assertEquals(await sel.select(0), []);
  assertEquals(await sel.select(20), []);
  // Still registered: unregistering works.
  assertEquals(sel.getMap().size, 2);
  sel.unregister(conn);
  sel.unregister(listener);
});

Deno.test("Selector.select() with no timeout and only closed pollables resolves [] when they are unregistered", async () => {
  using sel = new DefaultSelector();
  const listener = listen();
  sel.register(listener, EVENT_READ);
  listener.close();
  const pending = sel.select();
  await delay(10);
  sel.unregister(listener);
  assertEquals(await within(pending, 5_000, "select() after unregister()"), []);
});

Deno.test("Selector.select() serves two selectors watching one conn", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using a = new DefaultSelector();
  using b = new DefaultSelector();
  a.register(conn, EVENT_READ);
  b.register(conn, EVENT_WRITE);
  await peer.write(encoder.encode("hi"));
  await selectUntil(a, readyFor(conn, EVENT_READ));
  await selectUntil(b, readyFor(conn, EVENT_WRITE));
  // Unregistering from b leaves a reading.
  b.unregister(conn);
  assertEquals(maskOf(await a.select(0), conn), EVENT_READ);
  assertEquals(decoder.decode(conn.recv()!), "hi");
  await peer.write(encoder.encode("again"));
  await selectUntil(a, readyFor(conn, EVENT_READ));
  assertEquals(decoder.decode(conn.recv()!), "again");
});

// ---------------------------------------------------------------------------
// Wake-ups of a pending select()

Deno.test("Selector.register() of an already-ready conn wakes a pending select()", async () => {
  using pair = await tcpPair();
  const { conn } = pair;
  using sel = new DefaultSelector();
  using listener = listen();
  // Wait for the connect on a scratch selector.
  {
    using scratch = new DefaultSelector();
    scratch.register(conn, EVENT_WRITE);
    await selectUntil(scratch, readyFor(conn, EVENT_WRITE));
  }
  sel.register(listener, EVENT_READ);
  const start = performance.now();
  const pending = sel.select();
  await delay(10);
  sel.register(conn, EVENT_WRITE, "late");
  const batch = await within(pending, 5_000, "select() after register()");
  assertLess(performance.now() - start, 1000);
  assertEquals(batch.length, 1);
  assertStrictEquals(batch[0]![0].data, "late");
  assertEquals(batch[0]![1], EVENT_WRITE);
});

Deno.test("Selector.register() with nothing else registered wakes a pending select() with a timeout", async () => {
  using pair = await tcpPair();
  using sel = new DefaultSelector();
  const start = performance.now();
  const pending = sel.select(30_000);
  await delay(10);
  sel.register(pair.conn, EVENT_WRITE);
  // The connect may still be in flight: readiness then arrives later and wakes it.
  const batch = await within(pending, 5_000, "select(30_000) after register()");
  assertLess(performance.now() - start, 5000);
  assertEquals(maskOf(batch, pair.conn), EVENT_WRITE);
});

Deno.test("Selector.modify() adding EVENT_READ wakes a pending select() when data is buffered", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  // Make the write side not ready: the peer does not read, so buffers fill up.
  await fillUntilBlocked(sel, conn);
  // Buffer some input while registered for READ.
  sel.register(conn, EVENT_READ);
  await peer.write(encoder.encode("buffered"));
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  // Registered for WRITE only: not ready at all.
  sel.modify(conn, EVENT_WRITE);
  assertEquals(await sel.select(20), []);
  const start = performance.now();
  const pending = sel.select();
  await delay(10);
  sel.modify(conn, EVENT_READ | EVENT_WRITE, "now");
  const batch = await within(pending, 5_000, "select() after modify()");
  assertLess(performance.now() - start, 1000);
  assertEquals(batch.length, 1);
  assertEquals(batch[0]![1], EVENT_READ);
  assertStrictEquals(batch[0]![0].data, "now");
  assertEquals(decoder.decode(conn.recv()!), "buffered");
  sel.unregister(conn);
  // Let the peer drain what we queued so close() does not linger, then end.
  conn.close();
  peer.close();
});

Deno.test("Selector.close() from other code wakes a pending select() with no timeout", async () => {
  const sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  const pending = sel.select();
  const timer = setTimeout(() => sel.close(), 10);
  try {
    assertEquals(await within(pending, 5_000, "select() after close()"), []);
  } finally {
    clearTimeout(timer);
    sel.close();
  }
  assert(!listener.closed);
});

Deno.test("Selector.unregister() of the last key wakes a pending select() with no timeout", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  const start = performance.now();
  const pending = sel.select();
  await delay(10);
  sel.unregister(listener);
  assertEquals(
    await within(pending, 5_000, "select() after unregister() of the last key"),
    [],
  );
  assertLess(performance.now() - start, 1000);
});

Deno.test("Selector.unregister() of a ready key while a select() is pending keeps it out of the batch", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  sel.register(conn, EVENT_READ);
  const pending = sel.select(200);
  sel.unregister(conn);
  await peer.write(encoder.encode("late"));
  const batch = await pending;
  assertEquals(maskOf(batch, conn), 0);
  assertEquals(batch, []);
});

Deno.test("Selector.select() wakes when data arrives from another task", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  setTimeout(() => peer.write(encoder.encode("wake")), 20);
  const batch = await selectUntil(sel, readyFor(conn, EVENT_READ), {
    rounds: 5,
  });
  assertEquals(batch.length, 1);
  // The peer's write may still be settling; read everything it sent.
  const got: number[] = [];
  for (let round = 0; round < 100 && got.length < 4; round++) {
    try {
      got.push(...conn.recv()!);
    } catch (e) {
      if (!(e instanceof BlockingIOError)) throw e;
      await sel.select(1000);
    }
  }
  assertEquals(decoder.decode(new Uint8Array(got)), "wake");
});

// ---------------------------------------------------------------------------
// Fairness

Deno.test("Selector.select() still sees data on another conn while an always-writable conn is ready", async () => {
  using a = await tcpPair();
  using b = await tcpPair();
  using sel = new DefaultSelector<string>();
  sel.register(a.conn, EVENT_WRITE, "busy");
  sel.register(b.conn, EVENT_READ, "quiet");
  await selectUntil(sel, readyFor(a.conn, EVENT_WRITE));
  // Ten messages, each written by a timer that fires while the loop is busy:
  // both the timer and the read completion must get in.
  for (let message = 0; message < 10; message++) {
    let write: Promise<number> | undefined;
    const timer = setTimeout(() => {
      write = b.peer.write(encoder.encode(`m${message}`));
    }, 1);
    let rounds = 0;
    let seen = false;
    const start = performance.now();
    try {
      for (
        ;
        rounds < 100_000 && !seen && performance.now() - start < 5000;
        rounds++
      ) {
        // Always resolves: a.conn is writable.
        const batch = await within(sel.select(), 5_000, `round ${rounds}`);
        assertWellFormed(batch);
        assertEquals(maskOf(batch, a.conn), EVENT_WRITE);
        seen = maskOf(batch, b.conn) === EVENT_READ;
      }
    } finally {
      clearTimeout(timer);
    }
    await write;
    assert(seen, `message ${message} never reported in ${rounds} rounds`);
    assertEquals(decoder.decode(b.conn.recv()!), `m${message}`);
  }
});

Deno.test("Selector.select() ended by a call from the turn it began in still lets timers run", async () => {
  using pair = await tcpPair();
  using sel = new DefaultSelector();
  using idle = listen();
  sel.register(idle, EVENT_READ); // nobody connects: never ready
  sel.register(pair.conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(pair.conn, EVENT_WRITE));
  sel.unregister(pair.conn);
  // Each select() is already waiting when the call ends it, with no turn of
  // the event loop in between unless select() yields one itself.
  const ends: Array<[string, () => void, () => void, (() => void)?]> = [
    ["wakeup()", () => sel.wakeup(), () => {}],
    [
      "register() of a ready conn",
      () => sel.register(pair.conn, EVENT_WRITE),
      () => sel.unregister(pair.conn),
    ],
    [
      "modify() to events a conn is ready for",
      () => sel.modify(pair.conn, EVENT_WRITE),
      () => sel.modify(pair.conn, EVENT_READ),
      () => sel.register(pair.conn, EVENT_READ), // the peer sends nothing
    ],
    [
      "unregister() of the last key",
      () => sel.unregister(idle),
      () => sel.register(idle, EVENT_READ),
      () => sel.unregister(pair.conn), // so idle is the last key
    ],
  ];
  for (const [what, end, undo, before] of ends) {
    before?.();
    let fired = false;
    const timer = setTimeout(() => fired = true, 1);
    let rounds = 0;
    const start = performance.now();
    try {
      for (
        ;
        rounds < 100_000 && !fired && performance.now() - start < 2_000;
        rounds++
      ) {
        const pending = within(sel.select(), 5_000, `${what} #${rounds}`);
        end();
        await pending;
        undo();
      }
    } finally {
      clearTimeout(timer);
    }
    assert(
      fired,
      `a 1 ms timer never fired in ${rounds} selects ended by ${what}`,
    );
    assertLess(performance.now() - start, 500, what);
  }
});

Deno.test("Selector.select() lets timers run while a key is always ready", async () => {
  using pair = await tcpPair();
  using sel = new DefaultSelector();
  sel.register(pair.conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(pair.conn, EVENT_WRITE));
  let fired = false;
  const timer = setTimeout(() => fired = true, 5);
  try {
    const start = performance.now();
    for (let round = 0; round < 1_000_000 && !fired; round++) {
      await within(sel.select(), 5_000, `select() #${round}`);
      if (performance.now() - start > 5000) break;
    }
    assert(fired, "a 5 ms timer never fired in a busy select() loop");
  } finally {
    clearTimeout(timer);
  }
});

// ---------------------------------------------------------------------------
// Python's selectors documentation: echo server and clients on one selector

type Callback = (key: SelectorKey<Callback>, mask: number) => void;

Deno.test("Selector drives the echo server and several clients of Python's selectors docs", async () => {
  using sel = new DefaultSelector<Callback>();
  using listener = listen();
  const serverConns = new Set<PollableConn>();
  const outbox = new Map<PollableConn, Uint8Array[]>();

  // --- the server: accept() and read() callbacks, as in the docs ---
  const flush = (conn: PollableConn) => {
    const queue = outbox.get(conn)!;
    while (queue.length > 0) {
      const head = queue[0]!;
      let n: number;
      try {
        n = conn.send(head);
      } catch (e) {
        if (e instanceof BlockingIOError) break;
        throw e;
      }
      if (n === head.length) queue.shift();
      else queue[0] = head.subarray(n);
    }
    // Wait for EVENT_WRITE only while something is left to echo.
    const events = queue.length > 0 ? EVENT_READ | EVENT_WRITE : EVENT_READ;
    if (sel.getKey(conn).events !== events) sel.modify(conn, events, serve);
  };
  const serve: Callback = (key, mask) => {
    const conn = key.fileobj as PollableConn;
    if (mask & EVENT_READ) {
      const data = conn.recv(1000);
      if (data === null) {
        sel.unregister(conn);
        conn.close();
        serverConns.delete(conn);
        return;
      }
      outbox.get(conn)!.push(data);
    }
    flush(conn);
  };
  const accept: Callback = () => {
    const conn = listener.accept();
    serverConns.add(conn);
    outbox.set(conn, []);
    sel.register(conn, EVENT_READ, serve);
  };
  sel.register(listener, EVENT_READ, accept);

  // --- the clients: send a message, read the echo back, check, close ---
  const N = 6;
  const results = new Map<number, Uint8Array>();
  const messages: Uint8Array[] = [];
  const clients: PollableConn[] = [];
  for (let i = 0; i < N; i++) {
    const size = 10 + i * 40_000; // up to 200 KB: partial sends happen
    const message = new Uint8Array(size);
    for (let j = 0; j < size; j++) message[j] = (i * 31 + j * 7) & 0xff;
    messages.push(message);
    const conn = PollableConn.connect({
      hostname: "127.0.0.1",
      port: portOf(listener),
    });
    clients.push(conn);
    let sent = 0;
    const received: Uint8Array[] = [];
    let got = 0;
    const client: Callback = (key, mask) => {
      if (mask & EVENT_WRITE) {
        while (sent < size) {
          try {
            sent += conn.send(message.subarray(sent));
          } catch (e) {
            if (e instanceof BlockingIOError) break;
            throw e;
          }
        }
        if (sent === size) sel.modify(conn, EVENT_READ, key.data);
      }
      if (mask & EVENT_READ) {
        const data = conn.recv();
        if (data === null) throw new Error(`client ${i}: early end of stream`);
        received.push(data);
        got += data.length;
        if (got === size) {
          results.set(i, concat(received));
          sel.unregister(conn);
          conn.close();
        }
      }
    };
    sel.register(conn, EVENT_READ | EVENT_WRITE, client);
  }

  const start = performance.now();
  let rounds = 0;
  for (
    ;
    (results.size < N || serverConns.size > 0) && rounds < 100_000 &&
    performance.now() - start < 10_000;
    rounds++
  ) {
    const batch = await sel.select(1000);
    assertWellFormed(batch);
    for (const [key, mask] of batch) key.data(key, mask);
  }
  try {
    assertEquals(
      results.size,
      N,
      `only ${results.size} echoes after ${rounds} rounds`,
    );
    for (let i = 0; i < N; i++) {
      assertEquals(results.get(i)!.length, messages[i]!.length);
      assert(
        bytesEqual(results.get(i)!, messages[i]!),
        `client ${i}: echo differs`,
      );
    }
    assertEquals(serverConns.size, 0, "server conns left open");
    assertEquals(sel.getMap().size, 1);
  } finally {
    for (const c of clients) c.close();
    for (const c of serverConns) c.close();
  }
});

// ---------------------------------------------------------------------------
// Cost

Deno.test("Selector.select() reports only the ready key among many idle registrations", async () => {
  using sel = new DefaultSelector();
  using pair = await tcpPair();
  const listeners: PollableListener[] = [];
  try {
    // Idle pollables: listeners nobody connects to (registered for READ, never ready).
    for (let i = 0; i < 200; i++) {
      const l = listen();
      listeners.push(l);
      sel.register(l, EVENT_READ);
    }
    sel.register(pair.conn, EVENT_WRITE);
    await selectUntil(sel, readyFor(pair.conn, EVENT_WRITE));
    for (let i = 0; i < 2000; i++) {
      const batch = await within(sel.select(), 5_000, `select() #${i}`);
      assertLessOrEqual(batch.length, 1);
      assertEquals(maskOf(batch, pair.conn), EVENT_WRITE);
    }
  } finally {
    for (const l of listeners) l.close();
  }
});

Deno.test("Selector.select() with a timeout beyond 2^31 - 1 ms waits without spinning", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  // Count the timers select() arms: a timeout that overflows setTimeout's 32-bit
  // delay would fire after 1 ms and be re-armed in a busy loop.
  const realSetTimeout = globalThis.setTimeout;
  let armed = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    armed++;
    return realSetTimeout(...args);
  }) as typeof setTimeout;
  let pending: Promise<Batch>;
  try {
    pending = sel.select(2 ** 32 + 5);
    await delay(100);
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  sel.close();
  assertEquals(await within(pending, 5_000, "select() after close()"), []);
  // delay(100) itself arms one timer.
  assertLessOrEqual(armed, 3);
});

Deno.test("Selector.select(timeout) arms timers of a few durations only (4 leading bits), whatever the timeouts asked", async () => {
  using sel = new DefaultSelector();
  using a = listen();
  sel.register(a, EVENT_READ);
  const armed = await timersArmed(async () => {
    // Deno 2.9.6 keeps a timer list per distinct duration until it has
    // passed: 300 timeouts counting down by the ms would make 300 of them.
    for (let ms = 3_000; ms > 2_700; ms--) {
      const pending = sel.select(ms);
      const start = performance.now();
      sel.wakeup();
      await pending;
      // No within() here: its timer would be counted. A select() the wakeup()
      // does not end runs its whole timeout, so one round is enough to tell.
      assertLess(
        performance.now() - start,
        1_000,
        `select(${ms}) after wakeup()`,
      );
    }
  });
  // 0: the turn a select() ended by a call yields (one duration, whatever
  // the timeouts).
  const durations = new Set(armed.filter((ms) => ms > 0));
  assert(durations.size <= 2, `durations ${[...durations]}`);
  for (const ms of durations) {
    const unit = 2 ** Math.max(0, Math.floor(Math.log2(ms)) - 3);
    assertEquals(ms % unit, 0, `${ms}`);
  }
});
