/**
 * Faults that once made two live workers of `examples/distributed_crawl.ts`
 * fetch one URL (found by a fault-injection run: SIGKILL, SIGSTOP, Redis
 * frozen and restarted): a Redis restart, and a frozen worker stopped after
 * its entries were claimed. And one that kept a crawl from ending: a worker
 * whose connections keep dropping, which never claimed a dead worker's entries.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { readStream, redisTest, RespClient, startRedis } from "./_redis.ts";
import {
  countingServer,
  heldServer,
  Run,
  run,
  seedHeld,
  seedPaths,
  seedUrl,
  summaryOf,
  until,
  workArgs,
} from "./_distributed.ts";

/**
 * A loopback TCP relay in front of Redis that can be cut: `cut()` closes its
 * listener and every connection, so that connecting is refused, until
 * `restore()` listens again on the same port, as a Redis that is down for a
 * while (a restart, a crash) looks to its clients.
 */
class CuttableProxy implements AsyncDisposable {
  readonly #port: number;
  readonly #redisPort: number;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks: Promise<void>[] = [];
  #listener: Deno.TcpListener | null = null;
  #accepting: Promise<void> = Promise.resolve();

  constructor(redisPort: number) {
    this.#redisPort = redisPort;
    this.#listen(0);
    this.#port = this.#listener!.addr.port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  #listen(port: number): void {
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#listener = listener;
    this.#accepting = (async () => {
      try {
        for await (const client of listener) {
          this.#tasks.push(this.#relay(client));
        }
      } catch { /* closed */ }
    })();
  }

  async cut(): Promise<void> {
    this.#listener?.close();
    this.#listener = null;
    await this.#accepting;
    for (const conn of this.#conns) conn.close();
    this.#conns.clear();
  }

  restore(): void {
    this.#listen(this.#port);
  }

  async #relay(client: Deno.Conn): Promise<void> {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({
        hostname: "127.0.0.1",
        port: this.#redisPort,
      });
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client);
    this.#conns.add(server);
    const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (let n; (n = await from.read(buf)) !== null;) {
          for (let off = 0; off < n;) {
            off += await to.write(buf.subarray(off, n));
          }
        }
      } catch { /* cut or closed */ }
      for (const conn of [client, server]) {
        if (this.#conns.delete(conn)) conn.close();
      }
    };
    await Promise.all([pipe(client, server), pipe(server, client)]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.cut();
    await Promise.all(this.#tasks);
  }
}

redisTest(
  "distributed_crawl.ts work: when Redis restarts and is down 2.5 s (three times), live workers do not claim and fetch each other's URLs",
  async () => {
    await using redis = await startRedis({ appendOnly: true });
    await using server = countingServer(async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      return new Response("ok");
    });
    const urls = await seedPaths(redis, server.base, 6_000, "x");
    // The workers reach Redis through the proxy; seeding and checks do not.
    await using proxy = new CuttableProxy(redis.port);
    const work = (name: string) =>
      new Run(
        workArgs(redis, name, {
          concurrency: 16,
          queue: 8,
          "claim-idle": 2_000,
          // Not idle while any entry is pending: this only ends them.
          "idle-exit": 500,
        }).map((arg) => arg === redis.url ? proxy.url : arg),
      );
    await using w1 = work("w1");
    await using w2 = work("w2");
    await using w3 = work("w3");
    {
      // All three connected before the first cut: one still starting (a
      // loaded machine) would find Redis unreachable at its start, which ends
      // a worker by design.
      await using client = await RespClient.connect(redis.port);
      await until(
        async () => {
          const list = String(await client.call("CLIENT", "LIST"));
          return ["w1", "w2", "w3"].every((name) =>
            list.includes(`name=${name} `)
          );
        },
        "three workers connected",
        30_000,
      );
    }
    for (const at of [500, 2_000, 3_500]) {
      {
        await using client = await RespClient.connect(redis.port);
        await until(
          async () => Number(await client.call("XLEN", "crawl:results")) >= at,
          `${at} results`,
          30_000,
        );
      }
      // Redis goes away for 2.5 s, well within the minute a worker rides out
      // (README), and comes back restarted: its append-only file kept the
      // crawl, the scripts are to be loaded again.
      await proxy.cut();
      await redis.restart();
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      proxy.restore();
    }
    const summaries = [
      summaryOf(await w1.finished(60_000)),
      summaryOf(await w2.finished(60_000)),
      summaryOf(await w3.finished(60_000)),
    ];
    await using client = await RespClient.connect(redis.port);
    const results = await readStream(client, "crawl:results");
    assertEquals(results.length, urls.length);
    assertEquals(new Set(results.map((r) => r.fields.url)).size, urls.length);
    const twice = [...server.hits].filter(([, n]) => n > 1);
    assertEquals(
      summaries.map((s) => [s.worker, s.claimed, s.lost]),
      [["w1", 0, 0], ["w2", 0, 0], ["w3", 0, 0]],
      `live workers took each other's entries; ${twice.length} URLs fetched twice`,
    );
    assertEquals(twice, [], "fetched twice by two live workers");
  },
);

redisTest(
  "distributed_crawl.ts work does not claim the entries a live worker holds after Redis stalls for less than the client's 10 s bound (SIGSTOP, no disconnect): the late reply holds claims off",
  async () => {
    await using redis = await startRedis();
    await using server = heldServer("slow");
    const claimIdle = 3_000;
    // Past the hold-off of a worker started within claimIdle of Redis's start.
    await new Promise((resolve) => setTimeout(resolve, claimIdle + 500));
    const options = { "claim-idle": claimIdle, concurrency: 4, queue: 0 };
    await using w1 = new Run(workArgs(redis, "w1", options));
    let w2: Run | undefined;
    let stopped = false;
    try {
      await seedUrl(redis, `${server.base}/u1`);
      await until(
        () => Promise.resolve(server.hits.get("/u1") === 1),
        "w1 fetching /u1",
      );
      const held = performance.now();
      // Read later: due for renewal after the stall began, when w1's
      // renewal of /u1 is stuck on the wire.
      await new Promise((resolve) => setTimeout(resolve, 600));
      await seedUrl(redis, `${server.base}/u2`);
      await until(
        () => Promise.resolve(server.hits.get("/u2") === 1),
        "w1 fetching /u2",
      );
      w2 = new Run(workArgs(redis, "w2", options));
      {
        // Both in their reading loops, each with a read blocked in Redis: a
        // late reply is how a worker learns of a stall, and w2 may take a
        // while to start on a busy machine.
        await using client = await RespClient.connect(redis.port);
        await until(async () => {
          const info = String(await client.call("INFO", "clients"));
          return Number(/blocked_clients:(\d+)/.exec(info)?.[1]) >= 2;
        }, "w1 and w2 blocked in XREADGROUP");
      }
      const wait = claimIdle / 2 - 200 - (performance.now() - held);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
      // Past both entries' claimIdle, as Redis counts idle time.
      Deno.kill(redis.pid, "SIGSTOP");
      stopped = true;
      await new Promise((resolve) => setTimeout(resolve, claimIdle));
      Deno.kill(redis.pid, "SIGCONT");
      stopped = false;
      // Time for w2's claims, for w1's renewals to land.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      assertEquals(
        [server.hits.get("/u1"), server.hits.get("/u2")],
        [1, 1],
        "fetched twice by two live workers",
      );
    } finally {
      if (stopped) Deno.kill(redis.pid, "SIGCONT");
      server.release();
      w1.kill("SIGINT");
      w2?.kill("SIGINT");
    }
    const summaries = [
      summaryOf(await w1.finished(20_000)),
      summaryOf(await w2.finished(20_000)),
    ];
    assertEquals(
      summaries.map((s) => [s.worker, s.fetched, s.claimed, s.lost]),
      [["w1", 2, 0, 0], ["w2", 0, 0, 0]],
    );
  },
);

redisTest(
  "distributed_crawl.ts work started just after a Redis restart does not claim the entry a live worker holds, idle for Redis's downtime",
  async () => {
    await using redis = await startRedis({ appendOnly: true });
    await using server = await seedHeld(redis);
    // Room for w1 to renew after the comeback: its reconnect (2 s at most
    // between tries), a beat refused for the scripts Redis forgot, a beat.
    const claimIdle = 6_000;
    // Not idle while w1 holds its entry: --idle-exit only ends them.
    const options = { "claim-idle": claimIdle, "idle-exit": 500 };
    await using w1 = new Run(workArgs(redis, "w1", options));
    let w2: Run | undefined;
    try {
      await until(
        () => Promise.resolve(server.hits.get("/slow") === 1),
        "w1 fetching",
      );
      // Down for longer than claimIdle: back, Redis shows w1's entry as idle
      // that long, and w2, started then, saw no comeback of its own.
      await redis.restart(claimIdle + 500);
      w2 = new Run(workArgs(redis, "w2", options));
      await using client = await RespClient.connect(redis.port);
      const pending = async () => {
        const reply = await client.call(
          "XPENDING",
          "crawl:frontier",
          "workers",
          "-",
          "+",
          "10",
        ) as [string, string, number, number][];
        assertEquals(reply.length, 1);
        return reply[0]!;
      };
      // Until w1 has renewed it: no longer idle that long.
      await until(async () => {
        const [, owner, idle] = await pending();
        assertEquals(owner, "w1", "w2 claimed the entry w1 holds");
        return idle < claimIdle / 2;
      }, "w1 renewing its entry");
      assertEquals(server.hits.get("/slow"), 1);
    } finally {
      server.release();
    }
    const summaries = [
      summaryOf(await w1.finished(20_000)),
      summaryOf(await w2.finished(20_000)),
    ];
    assertEquals(
      summaries.map((s) => [s.worker, s.fetched, s.claimed]),
      [["w1", 1, 0], ["w2", 0, 0]],
    );
    assertEquals(server.hits.get("/slow"), 1);
  },
);

redisTest(
  "distributed_crawl.ts work on SIGINT releases only the entries still its own: not one a live worker claimed while it was frozen",
  async () => {
    await using redis = await startRedis();
    await using server = await seedHeld(redis);
    await using frozen = new Run(workArgs(redis, "frozen", { grace: 0 }));
    let w1: Run | undefined;
    let w2: Run | undefined;
    try {
      await until(
        () => Promise.resolve(server.hits.get("/slow") === 1),
        "the first worker fetching",
      );
      // Frozen: its entry goes idle, and w1 (one slot, so it scans no more
      // while fetching it) claims it and fetches it: at-least-once, as promised.
      frozen.kill("SIGSTOP");
      w1 = new Run(workArgs(redis, "w1", {
        concurrency: 1,
        queue: 0,
        "claim-idle": 300,
        "idle-exit": 1_000,
      }));
      await until(
        () => Promise.resolve(server.hits.get("/slow") === 2),
        "w1 fetching the frozen worker's entry",
      );
      // Thawed and stopped at once: it abandons its fetch and releases the
      // entry, which is w1's now.
      frozen.kill("SIGCONT");
      frozen.kill("SIGINT");
      const out = summaryOf(await frozen.finished(10_000));
      // A third live worker scans for idle entries.
      w2 = new Run(workArgs(redis, "w2", {
        "claim-idle": 300,
        "idle-exit": 1_000,
      }));
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      assertEquals(
        [out.released, server.hits.get("/slow")],
        [0, 2],
        "the stopped worker released an entry w1 held, and w2 fetched it again",
      );
    } finally {
      server.release();
      await w1?.[Symbol.asyncDispose]();
      await w2?.[Symbol.asyncDispose]();
    }
  },
);

/**
 * Kills, every `period` ms, the connections to Redis of the client named
 * `name` (`CLIENT KILL ID`), as a Redis `timeout` closing idle connections or
 * a flapping network does; its own connection is not one of them. At most
 * `rounds` times, until {@linkcode ConnectionKiller.stop}.
 */
class ConnectionKiller {
  readonly #done: Promise<number>;
  #stopped = false;
  #wake: (() => void) | null = null;

  constructor(port: number, name: string, period: number, rounds: number) {
    this.#done = (async () => {
      await using client = await RespClient.connect(port);
      let killed = 0;
      for (let round = 0; round < rounds && !this.#stopped; round++) {
        const list = String(await client.call("CLIENT", "LIST"));
        for (const line of list.split("\n")) {
          const id = /^id=(\d+) /.exec(line)?.[1];
          if (id !== undefined && line.includes(` name=${name} `)) {
            // Gone already (closed meanwhile) is an error reply: not counted.
            if (await client.send("CLIENT", "KILL", "ID", id) === 1) killed++;
          }
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, period);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return killed;
    })();
  }

  /** Stops killing; resolves how many connections were killed. */
  stop(): Promise<number> {
    this.#stopped = true;
    this.#wake?.();
    return this.#done;
  }
}

redisTest(
  "distributed_crawl.ts work claims a killed worker's entries while its own connections to Redis drop every second (--claim-idle 5 s): the crawl ends",
  async () => {
    await using redis = await startRedis();
    await using server = heldServer("ok");
    const urls = await seedPaths(redis, server.base, 40, "f");
    await using client = await RespClient.connect(redis.port);
    const pendingOf = async (name: string) => {
      const [, , , consumers] = await client.call(
        "XPENDING",
        "crawl:frontier",
        "workers",
      ) as [number, unknown, unknown, [string, string][] | null];
      return Number(consumers?.find(([n]) => n === name)?.[1] ?? 0);
    };
    // The dead worker holds 8 entries, 2 of them in flight (held at the gate).
    {
      await using dead = new Run(
        workArgs(redis, "dead", { concurrency: 2, queue: 6 }),
      );
      await until(
        async () => server.hits.size === 2 && await pendingOf("dead") === 8,
        "the worker to be killed holding 8 entries",
      );
      dead.kill("SIGKILL");
      assertEquals((await dead.finished()).code, 137);
    }
    const inFlight = new Set(server.hits.keys());
    server.release();
    const started = performance.now();
    await using w1 = new Run(workArgs(redis, "w1", {
      concurrency: 4,
      queue: 4,
      "claim-idle": 5_000,
      // Its blocking reads last as long: shorter than the drops' period, so
      // that some end and it can find the crawl idle.
      "idle-exit": 500,
    }));
    // From its first read on (its setup done), every second: never up for
    // the 5 s the old hold-off waited for. Before the dead worker's entries
    // are idle for 5 s, or w1 would claim them in its first second.
    await until(
      async () =>
        (await client.call("XINFO", "CONSUMERS", "crawl:frontier", "workers")
          .then((r) => JSON.stringify(r))).includes('"w1"'),
      "w1 reading",
    );
    const idle = await client.call(
      "XPENDING",
      "crawl:frontier",
      "workers",
      "-",
      "+",
      10,
      "dead",
    ) as [string, string, number, number][];
    const mostIdle = Math.max(...idle.map(([, , ms]) => Number(ms)));
    assert(mostIdle < 4_000, `the dead worker's entries idle ${mostIdle} ms`);
    const killer = new ConnectionKiller(redis.port, "w1", 1_000, 60);
    let out;
    let killed;
    try {
      out = await w1.finished(30_000);
    } finally {
      killed = await killer.stop();
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const stillPending = await pendingOf("dead");
    assertEquals(
      out.code,
      0,
      `w1 did not end by itself (${seconds} s, ${killed} connections killed, ` +
        `${stillPending} entries still pending for the dead worker): ${out.stderr}`,
    );
    const summary = summaryOf(out);
    assert(killed >= 5, `only ${killed} connections killed`);
    assertEquals(summary.claimed, 8, "w1 claimed the dead worker's entries");
    const results = await readStream(client, "crawl:results");
    assertEquals(results.length, urls.length);
    assertEquals(new Set(results.map((r) => r.fields.url)).size, urls.length);
    assertEquals(await pendingOf("dead"), 0);
    // Each fetched once, but the 2 the dead worker had in flight.
    for (const url of urls) {
      const path = new URL(url).pathname;
      assertEquals(server.hits.get(path), inFlight.has(path) ? 2 : 1, path);
    }
  },
);

/** A relay to Redis that hands each of its replies on `delayMs` late, in order: a slow link. */
class SlowLink implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks: Promise<void>[] = [];
  readonly #accepting: Promise<void>;

  constructor(redisPort: number, delayMs: number) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.#accepting = (async () => {
      try {
        for await (const client of listener) {
          this.#tasks.push(this.#relay(client, redisPort, delayMs));
        }
      } catch { /* closed */ }
    })();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#listener.addr.port}`;
  }

  async #relay(client: Deno.Conn, port: number, delayMs: number) {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port });
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client);
    this.#conns.add(server);
    const close = () => {
      for (const conn of [client, server]) {
        if (this.#conns.delete(conn)) conn.close();
      }
    };
    const up = (async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (let n; (n = await client.read(buf)) !== null;) {
          await server.write(buf.slice(0, n));
        }
      } catch { /* closed */ }
      close();
    })();
    let chain = Promise.resolve();
    const timers = new Set<ReturnType<typeof setTimeout>>();
    try {
      const buf = new Uint8Array(64 * 1024);
      for (let n; (n = await server.read(buf)) !== null;) {
        const chunk = buf.slice(0, n);
        const due = performance.now() + delayMs;
        chain = chain.then(async () => {
          const wait = due - performance.now();
          if (wait > 0) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                timers.delete(timer);
                resolve();
              }, wait);
              timers.add(timer);
            });
          }
          await client.write(chunk);
        }).catch(() => {});
      }
    } catch { /* closed */ }
    await chain;
    for (const timer of timers) clearTimeout(timer);
    close();
    await up;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) conn.close();
    this.#conns.clear();
    await Promise.all(this.#tasks);
  }
}

redisTest(
  "distributed_crawl.ts work over a slow link to Redis (550 ms a reply) still claims a dead worker's entries at --claim-idle 1600: the crawl ends",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(() => new Response("ok"));
    // More than one claim takes (its room: concurrency + queue, 8).
    const urls = await seedPaths(redis, server.base, 12, "s");
    await using client = await RespClient.connect(redis.port);
    // A worker that read them all and died.
    await client.call(
      "XREADGROUP",
      "GROUP",
      "workers",
      "ghost",
      "COUNT",
      "12",
      "STREAMS",
      "crawl:frontier",
      ">",
    );
    await using link = new SlowLink(redis.port, 550);
    const args = workArgs(redis, "w1", {
      concurrency: 4,
      queue: 4,
      "claim-idle": 1_600,
      // Not idle while the ghost's entries are pending: this only ends it,
      // each round of its idle check three or four slow replies long.
      "idle-exit": 300,
    });
    args[args.indexOf(redis.url)] = link.url;
    // Before: every reply counted as a stall, each held claims off again,
    // and the entries stayed the ghost's for good.
    const out = summaryOf(await new Run(args).finished(60_000));
    assertEquals(out.committed, urls.length);
    assertEquals(out.claimed, urls.length);
    assertEquals(
      (await readStream(client, "crawl:results")).length,
      urls.length,
    );
  },
);

redisTest(
  "distributed_crawl.ts work redoes at once what a Redis restarted from an older snapshot has pending for it again, while it waits for room: the crawl ends without waiting out --claim-idle",
  async () => {
    await using redis = await startRedis();
    const gates = new Map(
      ["/a", "/b"].map((path) => [path, Promise.withResolvers<void>()]),
    );
    await using server = countingServer(async (path) => {
      await gates.get(path)?.promise;
      return new Response("ok");
    });
    await seedUrl(redis, `${server.base}/a`);
    await seedUrl(redis, `${server.base}/b`);
    // Room for one entry: while it holds /b, the worker reads nothing.
    await using worker = new Run(workArgs(redis, "w1", {
      concurrency: 1,
      queue: 0,
      "idle-exit": 300,
    }));
    try {
      await until(
        () => Promise.resolve(server.hits.get("/a") === 1),
        "/a in flight",
      );
      {
        // The snapshot: /a pending for w1, /b not read yet. A restart
        // (`--save ""`: none at shutdown) goes back to it: /a's result is
        // lost and /a pending for w1 again, which holds /b.
        await using client = await RespClient.connect(redis.port);
        await client.call("SAVE");
        gates.get("/a")!.resolve();
        await until(
          () => Promise.resolve(server.hits.get("/b") === 1),
          "/b in flight",
        );
        assertEquals(await client.call("XLEN", "crawl:results"), 1);
      }
      await redis.restart();
      {
        await using client = await RespClient.connect(redis.port);
        assertEquals(await client.call("XLEN", "crawl:results"), 0);
      }
    } finally {
      for (const gate of gates.values()) gate.resolve();
    }
    // It took /a back at the next --claim-idle (60 s) and its hold-off.
    const out = await worker.finished(8_000);
    assertEquals(out.code, 0, out.stderr);
    await using client = await RespClient.connect(redis.port);
    const results = await readStream(client, "crawl:results");
    assertEquals(results.map((r) => r.fields.url).sort(), [
      `${server.base}/a`,
      `${server.base}/b`,
    ]);
    assertEquals(await client.call("XLEN", "crawl:frontier"), 0);
  },
);

redisTest(
  "distributed_crawl.ts work on a Redis made a replica (REPLICAOF) while it waits in XREADGROUP says so and exits 1, not that the crawl's state is lost",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(() => new Response("ok"));
    await seedUrl(redis, `${server.base}/a`);
    await using worker = new Run(workArgs(redis, "w1", {
      "idle-exit": 10_000,
    }));
    await using client = await RespClient.connect(redis.port);
    await until(
      async () => await client.call("XLEN", "crawl:results") === 1,
      "the result",
    );
    await until(
      async () =>
        /^blocked_clients:1\r?$/m.test(String(await client.call("INFO"))),
      "the worker's blocked read",
    );
    // A master that is not there: Redis keeps its data, read-only.
    await client.call("REPLICAOF", "127.0.0.1", "1");
    try {
      const out = await worker.finished(5_000);
      assertEquals(out.code, 1, out.stderr);
      assertStringIncludes(out.stderr, "Redis is a read-only replica now");
      assert(!out.stderr.includes("lost the crawl's state"), out.stderr);
    } finally {
      await client.call("REPLICAOF", "NO", "ONE");
    }
    assertEquals(await client.call("XLEN", "crawl:results"), 1);
  },
);

redisTest(
  "distributed_crawl.ts seed to a Redis that is a replica (its writes refused with READONLY) says so and exits 1",
  async () => {
    await using redis = await startRedis();
    await using client = await RespClient.connect(redis.port);
    // A master that is not there: Redis stays a read-only replica.
    await client.call("REPLICAOF", "127.0.0.1", "1");
    try {
      const out = await run(["seed", "--redis", redis.url, "http://a.test/"]);
      assertEquals(out.code, 1, out.stderr);
      assertStringIncludes(out.stderr, "Redis is a read-only replica now");
      assertStringIncludes(out.stderr, "READONLY");
    } finally {
      await client.call("REPLICAOF", "NO", "ONE");
    }
    assertEquals(await client.call("EXISTS", "crawl:frontier"), 0);
  },
);
