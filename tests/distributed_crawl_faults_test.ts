/**
 * Faults that once made two live workers of `examples/distributed_crawl.ts`
 * fetch one URL (found by a fault-injection run: SIGKILL, SIGSTOP, Redis
 * frozen and restarted): a Redis restart, and a frozen worker stopped after
 * its entries were claimed.
 */
import { assertEquals } from "@std/assert";
import { readStream, redisTest, RespClient, startRedis } from "./_redis.ts";
import {
  countingServer,
  Run,
  seedPaths,
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
          "idle-exit": 1_000,
        }).map((arg) => arg === redis.url ? proxy.url : arg),
      );
    await using w1 = work("w1");
    await using w2 = work("w2");
    await using w3 = work("w3");
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
  "distributed_crawl.ts work on SIGINT releases only the entries still its own: not one a live worker claimed while it was frozen",
  async () => {
    await using redis = await startRedis();
    let release!: () => void;
    const held = new Promise<void>((resolve) => release = resolve);
    await using server = countingServer(async () => {
      await held;
      return new Response("slow");
    });
    const seed = new Run(["seed", "--redis", redis.url, `${server.base}/slow`]);
    assertEquals((await seed.finished()).code, 0);
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
      release();
      await w1?.[Symbol.asyncDispose]();
      await w2?.[Symbol.asyncDispose]();
    }
  },
);
