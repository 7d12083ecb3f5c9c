import { assert, assertEquals } from "@std/assert";
import { DeadlineQueue, type Timed } from "../client/_deadlines.ts";
import { IdlePool, type Poolable } from "../client/_pool.ts";
import { Fifo, Origin, Scheduler } from "../client/_scheduler.ts";
import { mulberry32, runScript } from "./_net.ts";

class Entry implements Timed, Poolable {
  due = 0;
  heapIndex = -1;
  poolOrigin = "";
  poolIndex = -1;
  poolOlder: Entry | null = null;
  poolNewer: Entry | null = null;
  constructor(readonly name: string) {}
}

Deno.test("DeadlineQueue.popDue() returns entries in due order, re-keyed and deleted ones included", () => {
  const rng = mulberry32(7);
  const queue = new DeadlineQueue<Entry>();
  const entries = Array.from({ length: 500 }, (_, i) => new Entry(String(i)));
  for (const entry of entries) queue.set(entry, Math.floor(rng() * 1000));
  // Re-key half (earlier and later), delete a tenth, re-add some deleted ones.
  for (let i = 0; i < 250; i++) {
    queue.set(entries[i]!, Math.floor(rng() * 1000));
  }
  for (let i = 0; i < 500; i += 10) queue.delete(entries[i]!);
  for (let i = 0; i < 100; i += 20) queue.set(entries[i]!, 5);
  const expected = entries.filter((e) => queue.has(e)).map((e) => e.due)
    .sort((a, b) => a - b);
  assertEquals(queue.size, expected.length);
  assertEquals(queue.nextDue, expected[0]);
  const popped: number[] = [];
  let entry: Entry | undefined;
  while ((entry = queue.popDue(Infinity)) !== undefined) {
    assertEquals(entry.heapIndex, -1);
    popped.push(entry.due);
  }
  assertEquals(popped, expected);
  assertEquals(queue.nextDue, Infinity);
});

Deno.test("DeadlineQueue.popDue() leaves entries not yet due, and set(Infinity) removes", () => {
  const queue = new DeadlineQueue<Entry>();
  const a = new Entry("a");
  const b = new Entry("b");
  queue.set(a, 10);
  queue.set(b, 20);
  queue.set(a, 10); // again: still one entry
  assertEquals(queue.size, 2);
  assertEquals(queue.popDue(5), undefined);
  assertEquals(queue.popDue(10)?.name, "a");
  assertEquals(queue.popDue(15), undefined);
  queue.set(b, Infinity);
  assertEquals(queue.size, 0);
  queue.delete(b); // not queued: nothing happens
  assertEquals(queue.peek(), undefined);
});

function scheduler(
  limits: { concurrency?: number; perOrigin?: number; delay?: number } = {},
) {
  const timers = new DeadlineQueue<Timed>();
  const s = new Scheduler<string>({
    concurrency: limits.concurrency ?? Infinity,
    perOrigin: limits.perOrigin ?? Infinity,
    delay: limits.delay ?? 0,
  }, timers);
  return { s, timers };
}

/** Takes everything startable at `now`, with the origin of each. */
function takeAll(s: Scheduler<string>, now: number): string[] {
  const out: string[] = [];
  let job: string | undefined;
  while ((job = s.take(now)) !== undefined) out.push(job);
  return out;
}

Deno.test("Scheduler.take() never exceeds the global limit and lets origins take turns", () => {
  const { s } = scheduler({ concurrency: 3 });
  const a = s.origin("a");
  const b = s.origin("b");
  for (const job of ["a1", "a2", "a3", "a4"]) s.push(a, job, 0);
  for (const job of ["b1", "b2"]) s.push(b, job, 0);
  assertEquals(takeAll(s, 0), ["a1", "b1", "a2"]);
  assertEquals(s.running, 3);
  s.release(a, 1);
  assertEquals(takeAll(s, 1), ["b2"]);
  s.release(b, 2);
  s.release(b, 2);
  assertEquals(takeAll(s, 2), ["a3", "a4"]);
  assertEquals(s.queued, 0);
});

Deno.test("Scheduler.take() keeps per-origin in-flight at the limit while other origins go on", () => {
  const { s } = scheduler({ concurrency: 10, perOrigin: 2 });
  const slow = s.origin("slow");
  const fast = s.origin("fast");
  for (let i = 0; i < 5; i++) s.push(slow, `s${i}`, 0);
  for (let i = 0; i < 5; i++) s.push(fast, `f${i}`, 0);
  assertEquals(takeAll(s, 0), ["s0", "f0", "s1", "f1"]);
  assertEquals(slow.inFlight, 2);
  s.release(fast, 1);
  s.release(fast, 1);
  assertEquals(takeAll(s, 1), ["f2", "f3"]);
  assertEquals(slow.inFlight, 2, "the slow origin stays at its limit");
  s.release(slow, 2);
  assertEquals(takeAll(s, 2), ["s2"]);
});

Deno.test("Scheduler.take() starts one origin's jobs at least delay apart, through the deadline queue", () => {
  const { s, timers } = scheduler({ delay: 100 });
  const a = s.origin("a");
  const b = s.origin("b");
  for (let i = 0; i < 3; i++) s.push(a, `a${i}`, 0);
  s.push(b, "b0", 0);
  assertEquals(takeAll(s, 0), ["a0", "b0"]);
  assertEquals(timers.nextDue, 100);
  assertEquals(takeAll(s, 50), []);
  // The crawl pops what is due and hands origins back.
  const due = timers.popDue(100);
  assert(due instanceof Origin);
  s.wake(due, 100);
  assertEquals(takeAll(s, 100), ["a1"]);
  assertEquals(timers.nextDue, 200);
  s.wake(timers.popDue(200) as Origin<string>, 200);
  assertEquals(takeAll(s, 200), ["a2"]);
  assertEquals(timers.size, 0);
});

Deno.test("Scheduler.sent() counts the delay again from a request's send, moving a waiting origin later", () => {
  const { s, timers } = scheduler({ delay: 100 });
  const a = s.origin("a");
  for (let i = 0; i < 3; i++) s.push(a, `a${i}`, 0);
  assertEquals(takeAll(s, 0), ["a0"]);
  assertEquals(timers.nextDue, 100);
  // a0's new conn took 30 ms to connect: its request went out at 30.
  s.sent(a, 30, 100, 30);
  assertEquals(timers.nextDue, 130);
  assertEquals(timers.popDue(100), undefined);
  s.wake(timers.popDue(130) as Origin<string>, 130);
  assertEquals(takeAll(s, 130), ["a1"]);
  // Sent at once (a kept conn): the start's delay stands.
  s.sent(a, 130, 100, 130);
  assertEquals(timers.nextDue, 230);
  s.release(a, 131);
  s.release(a, 140);
  // A send seen while the origin waits its turn in the ready ring: take()
  // holds it until then.
  s.wake(timers.popDue(230) as Origin<string>, 230);
  s.sent(a, 200, 100, 230);
  assertEquals(takeAll(s, 230), []);
  assertEquals(timers.nextDue, 300);
});

Deno.test("Scheduler.pause() holds one origin until the pause ends, not the others", () => {
  const { s, timers } = scheduler({ perOrigin: 1 });
  const a = s.origin("a");
  const b = s.origin("b");
  s.push(a, "a0", 0);
  s.push(a, "a1", 0);
  s.push(b, "b0", 0);
  s.push(b, "b1", 0);
  assertEquals(takeAll(s, 0), ["a0", "b0"]);
  s.pause(a, 1_000, 10); // a's 429 came
  s.release(a, 10);
  s.release(b, 10);
  assertEquals(takeAll(s, 10), ["b1"]);
  assertEquals(timers.nextDue, 1_000);
  s.wake(timers.popDue(1_000) as Origin<string>, 1_000);
  assertEquals(takeAll(s, 1_000), ["a1"]);
  // A pause that comes while the origin is ready is honoured at its turn.
  s.push(b, "b2", 1_000);
  s.release(b, 1_000);
  s.pause(b, 2_000, 1_000);
  assertEquals(takeAll(s, 1_000), []);
  s.wake(timers.popDue(2_000) as Origin<string>, 2_000);
  assertEquals(takeAll(s, 2_000), ["b2"]);
});

Deno.test("Scheduler.push() with front queues a retry ahead of its origin's others", () => {
  const { s } = scheduler({ concurrency: 1 });
  const a = s.origin("a");
  s.push(a, "a0", 0);
  s.push(a, "a1", 0);
  assertEquals(takeAll(s, 0), ["a0"]);
  s.release(a, 0);
  s.push(a, "a0 again", 0, true);
  assertEquals(takeAll(s, 0), ["a0 again"]);
  s.release(a, 0);
  assertEquals(takeAll(s, 0), ["a1"]);
});

Deno.test("Scheduler.unqueue() takes a waiting job out, whether its origin is ready, timed or full, and forgets an origin left with nothing once its pause ends", () => {
  const { s, timers } = scheduler({ perOrigin: 1, delay: 0 });
  const a = s.origin("a");
  s.push(a, "a0", 0);
  s.push(a, "a1", 0);
  s.push(a, "a2", 0);
  assertEquals(takeAll(s, 0), ["a0"]); // a is full now
  assert(s.unqueue(a, "a1", 1));
  assert(!s.unqueue(a, "a1", 1), "only once");
  assertEquals(s.queued, 1);
  s.release(a, 2);
  assertEquals(takeAll(s, 2), ["a2"]);
  s.release(a, 3);
  // Ready: the only job taken out leaves nothing for take() to find.
  const b = s.origin("b");
  s.push(b, "b0", 3);
  assert(s.unqueue(b, "b0", 4));
  assertEquals(takeAll(s, 4), []);
  assertEquals(s.queued, 0);
  // Timed (paused): with its last job gone, it is remembered until its pause
  // ends, then forgotten.
  const c = s.origin("c");
  s.pause(c, 1_000, 4);
  s.push(c, "c0", 4);
  assertEquals(timers.nextDue, 1_000);
  assert(s.unqueue(c, "c0", 5));
  assertEquals(timers.size, 1);
  assert(s.origin("c") === c, "still paused: remembered");
  s.wake(timers.popDue(1_000) as Origin<string>, 1_000);
  assert(s.origin("c") !== c, "its pause over: forgotten");
  // An origin with nothing queued, in flight or pending is forgotten.
  assert(s.origin("b") !== b);
});

Deno.test("Scheduler.drain() returns every queued job and clears the timers", () => {
  const { s, timers } = scheduler({ delay: 50 });
  const a = s.origin("a");
  s.push(a, "a0", 0);
  s.push(a, "a1", 0);
  takeAll(s, 0);
  assertEquals(timers.size, 1);
  assertEquals(s.drain(), ["a1"]);
  assertEquals(timers.size, 0);
  assertEquals(s.queued, 0);
});

Deno.test("IdlePool.remove() drops any entry in O(1) and take() returns the most recent", () => {
  const pool = new IdlePool<Entry>(3);
  const [a, b, c, d] = ["a", "b", "c", "d"].map((n) => new Entry(n));
  assert(pool.put("o", a!) && pool.put("o", b!) && pool.put("o", c!));
  assert(!pool.put("o", d!), "full");
  pool.remove(a!);
  assertEquals(a!.poolIndex, -1);
  pool.remove(a!); // twice: nothing happens
  assertEquals(pool.size, 2);
  assertEquals(pool.take("o")?.name, "b"); // c moved into a's place
  assertEquals(pool.take("o")?.name, "c");
  assertEquals(pool.take("o"), undefined);
  assert(pool.put("p", d!));
  assertEquals(pool.drain().map((e) => e.name), ["d"]);
  assertEquals(pool.size, 0);
  assert(!new IdlePool<Entry>(0).put("o", a!));
});

Deno.test("Scheduler forgets an origin it is done with once its delay or pause ends, not at the crawl's end", () => {
  const { s, timers } = scheduler({ delay: 100 });
  for (let i = 0; i < 50; i++) {
    const origin = s.origin(`o${i}`);
    s.push(origin, `j${i}`, 0);
    assertEquals(s.take(0), `j${i}`);
    s.release(origin, 10); // done, its next start at 100 still ahead
  }
  const paused = s.origin("p");
  s.push(paused, "p0", 0);
  assertEquals(s.take(0), "p0");
  s.pause(paused, 500, 5); // a 429's Retry-After, while in flight
  s.release(paused, 10);
  assertEquals(s.origins, 51, "remembered while their delays run");
  assertEquals(timers.size, 51);
  let due: Timed | undefined;
  while ((due = timers.popDue(100)) !== undefined) {
    s.wake(due as Origin<string>, 100);
  }
  assertEquals(s.origins, 1, "the paused one waits for its pause");
  // Pushed again before its pause ends: it waits for it, as before.
  s.push(paused, "p1", 200);
  assertEquals(takeAll(s, 200), []);
  assertEquals(timers.popDue(500), paused);
  s.wake(paused, 500);
  assertEquals(takeAll(s, 500), ["p1"]);
  s.release(paused, 600);
  assertEquals(s.origins, 0);
  assertEquals(timers.size, 0);
});

Deno.test("IdlePool past maxTotal evicts the entry pooled longest ago, whatever its origin", () => {
  const evicted: string[] = [];
  const pool = new IdlePool<Entry>(2, 3, (e) => evicted.push(e.name));
  const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((n) => new Entry(n));
  assert(pool.put("o", a!) && pool.put("p", b!) && pool.put("q", c!));
  assertEquals(pool.take("o")?.name, "a"); // taken: no longer the oldest
  assert(pool.put("o", a!));
  assert(pool.put("r", d!));
  assertEquals(evicted, ["b"]);
  assertEquals(b!.poolIndex, -1);
  assertEquals(pool.take("p"), undefined);
  pool.remove(c!);
  assert(pool.put("s", e!)); // room again: nothing evicted
  assertEquals(evicted, ["b"]);
  assertEquals(pool.size, 3);
  assertEquals(pool.drain().map((x) => x.name).sort(), ["a", "d", "e"]);
  assert(pool.put("o", b!));
  assertEquals(pool.size, 1);
});

Deno.test("Scheduler.pause() keeps the later of two pauses, and moves a waiting origin later", () => {
  const { s, timers } = scheduler({ delay: 100 });
  const a = s.origin("a");
  s.push(a, "a0", 0);
  s.push(a, "a1", 0);
  assertEquals(takeAll(s, 0), ["a0"]);
  assertEquals(timers.nextDue, 100); // waiting for the politeness delay
  s.pause(a, 500, 10);
  assertEquals(timers.nextDue, 500, "the pause moved it");
  s.pause(a, 300, 10); // an earlier end changes nothing
  assertEquals(timers.nextDue, 500);
  assertEquals(timers.size, 1);
  s.wake(a, 400); // not due yet as far as the queue knows: still timed
  s.wake(timers.popDue(500) as Origin<string>, 500);
  assertEquals(takeAll(s, 500), ["a1"]);
});

Deno.test("Scheduler.wake() of an origin that is not waiting for a time does nothing", () => {
  const { s } = scheduler({ concurrency: 1 });
  const a = s.origin("a");
  s.push(a, "a0", 0);
  s.push(a, "a1", 0);
  s.wake(a, 0); // ready already
  assertEquals(takeAll(s, 0), ["a0"]);
  s.wake(a, 0);
  assertEquals(takeAll(s, 0), [], "the global limit still holds");
});

Deno.test("Scheduler keeps origins in turn through 1,000,000 takes while its ready ring never empties, in bounded memory", async () => {
  // Three origins that always have jobs, two slots: the ring is never empty, so
  // it must be compacted, not only reset when it empties (it once grew by one
  // slot per take). In a child with --expose-gc, to read the heap after a GC.
  const script = `
    import { DeadlineQueue } from ${
    JSON.stringify(new URL("../client/_deadlines.ts", import.meta.url).href)
  };
    import { Scheduler } from ${
    JSON.stringify(new URL("../client/_scheduler.ts", import.meta.url).href)
  };
    const s = new Scheduler({ concurrency: 2, perOrigin: Infinity, delay: 0 }, new DeadlineQueue());
    const origins = ["a", "b", "c"].map((key) => s.origin(key));
    const refill = (o) => { while (o.queued < 4) s.push(o, o.key, 0); };
    origins.forEach(refill);
    const running = [];
    let order = "", wrong = 0;
    const take = () => {
      const job = s.take(0);
      if (job === undefined) return false;
      const o = origins.find((x) => x.key === job);
      running.push(o);
      refill(o);
      if (job !== "abc"[taken % 3]) wrong++;
      taken++;
      return true;
    };
    let taken = 0;
    while (take());
    globalThis.gc();
    const before = Deno.memoryUsage().heapUsed;
    for (let i = 0; i < 1_000_000; i++) {
      s.release(running.shift(), 0);
      while (take());
    }
    globalThis.gc();
    const grown = Deno.memoryUsage().heapUsed - before;
    console.log(JSON.stringify({ taken, wrong, grown }));
  `;
  const { stdout, stderr, success } = await runScript(script, [
    "--v8-flags=--expose-gc",
    "--allow-read",
  ]);
  assert(success, stderr);
  const { taken, wrong, grown } = JSON.parse(stdout);
  assertEquals(taken, 1_000_002);
  assertEquals(wrong, 0, "origins took turns a, b, c");
  assert(grown < 2 * 1024 * 1024, `heap grew by ${grown} bytes`);
});

Deno.test("Fifo matches a plain array under 100,000 random pushes, unshifts, shifts, removes and drains", () => {
  const rng = mulberry32(11);
  const fifo = new Fifo<number>();
  let model: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const r = rng();
    if (r < 0.5) {
      fifo.push(i);
      model.push(i);
    } else if (r < 0.55) {
      fifo.unshift(i);
      model.unshift(i);
    } else if (r < 0.6) {
      // One that is queued (when any is), or one that is not.
      const item = model.length > 0 && rng() < 0.8
        ? model[Math.floor(rng() * model.length)]!
        : -1;
      const at = model.indexOf(item);
      assertEquals(fifo.remove(item), at >= 0);
      if (at >= 0) model.splice(at, 1);
    } else if (r < 0.9999) {
      if (model.length > 0) assertEquals(fifo.shift(), model.shift());
    } else {
      assertEquals(fifo.drain(), model);
      model = [];
    }
    assertEquals(fifo.length, model.length);
  }
  assertEquals(fifo.drain(), model);
});

Deno.test("Fifo keeps a ring bounded by what it held: redirect hops put first on an emptied queue, and removes from inside, do not grow it", () => {
  const fifo = new Fifo<object>();
  const jobs = Array.from({ length: 1000 }, () => ({}));
  for (const job of jobs) fifo.push(job);
  while (fifo.length > 0) fifo.shift();
  const capacity = fifo.capacity;
  assert(capacity >= 1000 && capacity <= 2048, `capacity ${capacity}`);
  // A hop to an origin with nothing else queued, taken at its turn: the
  // array's unshift used to add a slot each time.
  for (let i = 0; i < 100_000; i++) {
    fifo.unshift(jobs[i % 1000]!);
    fifo.shift();
  }
  assertEquals(fifo.capacity, capacity);
  // Holes left inside by removes are reused, not grown past.
  for (let round = 0; round < 10; round++) {
    for (const job of jobs) fifo.push(job);
    for (let i = 1; i < 999; i++) assert(fifo.remove(jobs[i]!));
    assertEquals(fifo.length, 2);
    assertEquals(fifo.shift(), jobs[0]);
    assertEquals(fifo.shift(), jobs[999]);
  }
  assertEquals(fifo.capacity, capacity);
  assertEquals(fifo.length, 0);
});

Deno.test("Fifo.remove() of its last item drops the holes before it: the pushes after it fit in the ring it has", () => {
  const fifo = new Fifo<number>();
  for (let i = 0; i < 8; i++) fifo.push(i);
  assertEquals(fifo.capacity, 8);
  // Two expire from inside, then the newest: their holes go with it.
  assert(fifo.remove(5));
  assert(fifo.remove(6));
  assert(fifo.remove(7));
  assertEquals(fifo.length, 5);
  fifo.push(8);
  fifo.push(9);
  fifo.push(10);
  // Eight slots hold the eight items: no hole left at the end grew it.
  assertEquals(fifo.capacity, 8);
  assertEquals(fifo.drain(), [0, 1, 2, 3, 4, 8, 9, 10]);
});

class PoolEntry implements Poolable {
  poolOrigin = "";
  poolIndex = -1;
  poolOlder: PoolEntry | null = null;
  poolNewer: PoolEntry | null = null;
  constructor(readonly name: string) {}
}

Deno.test("IdlePool.remove() of an entry moved into a removed one's place removes it too (two idle conns of one origin closed by the server)", () => {
  const pool = new IdlePool<PoolEntry>(3);
  const [a, b, c] = ["a", "b", "c"].map((n) => new PoolEntry(n));
  assert(pool.put("o", a!) && pool.put("o", b!) && pool.put("o", c!));
  pool.remove(a!); // c moves into a's place
  pool.remove(c!); // then the server closes c as well
  assertEquals(c!.poolIndex, -1);
  assertEquals(pool.size, 1);
  // Only b is left to reuse: a closed conn is never handed out again.
  assertEquals(pool.take("o")?.name, "b");
  assertEquals(pool.take("o"), undefined);
  assertEquals(pool.size, 0);
  // And c, gone, may be pooled again.
  assert(pool.put("o", c!));
  assertEquals(pool.drain().map((e) => e.name), ["c"]);
});
