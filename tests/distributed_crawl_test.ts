/**
 * `examples/distributed_crawl.ts` against a real `redis-server` (see `_redis.ts`)
 * and an HTTP server in this process that counts its hits per path. Workers are
 * separate `deno run` processes, as they would be on several machines; every wait
 * is bounded.
 *
 * @module
 */
import { sameOriginLinks } from "../examples/distributed/_links.ts";
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import {
  readStream,
  type RedisServer,
  redisTest,
  RespClient,
  startRedis,
} from "./_redis.ts";
import {
  countingServer,
  heldServer,
  Run,
  run,
  runEach,
  seedFile,
  seedHeld,
  seedPaths,
  seedUrl,
  spawnInShell,
  summaryOf,
  until,
  workArgs,
} from "./_distributed.ts";

/** A handler that answers "ok" after `ms`. */
function okAfter(ms: number): () => Promise<Response> {
  return async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return new Response("ok");
  };
}

async function statusJson(redis: RedisServer): Promise<unknown> {
  const out = await run(["status", "--redis", redis.url, "--json"]);
  assertEquals(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

redisTest(
  "distributed_crawl.ts work gives each of 5,000 URLs exactly one result when one of 3 workers is killed half way",
  async () => {
    await using redis = await startRedis();
    // Slow enough that the killed worker holds URLs in flight.
    await using server = countingServer(okAfter(5));
    const urls = await seedPaths(redis, server.base, 5_000, "u");
    await using client = await RespClient.connect(redis.port);

    const names = ["w0", "w1", "w2"];
    const workers = names.map((name) =>
      new Run(workArgs(redis, name, {
        concurrency: 16,
        queue: 8,
        "claim-idle": 1000,
        "idle-exit": 300,
      }))
    );
    try {
      await until(
        async () => Number(await client.call("XLEN", "crawl:results")) >= 2_500,
        "half of the results",
      );
      workers[0]!.kill("SIGKILL");
      const killed = await workers[0]!.finished();
      assertEquals(killed.code, 137);
      const pending = await client.call(
        "XPENDING",
        "crawl:frontier",
        "workers",
        "-",
        "+",
        1_000,
        "w0",
      ) as [string, string, number, number][];
      assert(pending.length > 0, "the killed worker held no URL");
      assert(pending.length <= 16 + 8, `w0 held ${pending.length} URLs`);
      const orphans: string[] = [];
      for (const [id] of pending) {
        const [entry] = await client.call(
          "XRANGE",
          "crawl:frontier",
          id,
          id,
        ) as [string, string[]][];
        orphans.push(entry![1][1]!);
      }

      const summaries = [
        summaryOf(await workers[1]!.finished()),
        summaryOf(await workers[2]!.finished()),
      ];
      const claimed = summaries.reduce((n, s) => n + s.claimed, 0);
      assert(
        claimed >= orphans.length,
        `claimed ${claimed} of ${orphans.length}`,
      );

      const results = await readStream(client, "crawl:results");
      assertEquals(results.length, urls.length);
      const byUrl = new Map(results.map((r) => [r.fields.url!, r.fields]));
      assertEquals(byUrl.size, urls.length, "a URL has two results");
      for (const url of urls) {
        const fields = byUrl.get(url);
        assert(fields !== undefined, `no result for ${url}`);
        assertEquals(fields.ok, "true");
        assertEquals(fields.status, "200");
        assertEquals(fields.bytes, "2");
      }
      for (const url of orphans) {
        assert(byUrl.get(url)!.worker !== "w0", `${url} stayed with w0`);
      }
      // Fetched twice at most: what w0 fetched and never committed.
      let extra = 0;
      for (const count of server.hits.values()) extra += count - 1;
      assertEquals(server.hits.size, urls.length);
      assert(extra <= orphans.length, `${extra} extra fetches`);
      assertEquals(await statusJson(redis), {
        frontier: 0,
        pending: { w0: 0, w1: 0, w2: 0 },
        results: 5_000,
        errors: 0,
      });
    } finally {
      for (const worker of workers) await worker[Symbol.asyncDispose]();
    }
  },
);

/** Page `i` of a site of `n` pages: links forward, backward, far, and off-site. */
function page(i: number, n: number, offsite: string): string {
  const links = [(i + 1) % n, (i * 7 + 3) % n, (i + n - 1) % n, (i * i) % n];
  return `<!doctype html><title>${i}</title>` +
    links.map((j) => `<a href="/p/${j}">${j}</a> `).join("") +
    `<a href="/p/${(i + 2) % n}#section">again</a>` +
    `<a href='${offsite}/p/${i}'>away</a><a href="mailto:x@example.com">m</a>`;
}

redisTest(
  "distributed_crawl.ts work --follow fetches each page of a 300-page site with cycles exactly once across 3 workers",
  async () => {
    await using redis = await startRedis();
    const PAGES = 300;
    await using offsite = countingServer(() => new Response("no"));
    await using server = countingServer((path) => {
      const match = /^\/p\/(\d+)$/.exec(path);
      if (match === null) return new Response("not found", { status: 404 });
      return new Response(page(Number(match[1]), PAGES, offsite.base), {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    });
    const seeded = await run([
      "seed",
      "--redis",
      redis.url,
      `${server.base}/p/0`,
      `${server.base}/p/0#top`,
    ]);
    assertEquals(seeded.code, 0, seeded.stderr);
    assertEquals(
      seeded.stdout.trim(),
      "seeded 1 new URLs (1 already seen) into crawl:frontier",
    );

    const summaries = (await Promise.all(
      ["a", "b", "c"].map((name) =>
        run(workArgs(redis, name, {
          follow: true,
          concurrency: 8,
          "idle-exit": 200,
        }))
      ),
    )).map(summaryOf);

    assertEquals(server.hits.size, PAGES);
    for (let i = 0; i < PAGES; i++) {
      assertEquals(server.hits.get(`/p/${i}`), 1, `/p/${i}`);
    }
    assertEquals(offsite.hits.size, 0);
    assertEquals(
      summaries.reduce((n, s) => n + s.committed, 0),
      PAGES,
    );
    await using client = await RespClient.connect(redis.port);
    assertEquals(await client.call("SCARD", "crawl:seen"), PAGES);
    assertEquals(await statusJson(redis), {
      frontier: 0,
      pending: { a: 0, b: 0, c: 0 },
      results: PAGES,
      errors: 0,
    });
  },
);

redisTest(
  "distributed_crawl.ts work on SIGINT releases the URLs unfinished after --grace, unacked, to the next worker at once, even from a Redis that lost its scripts",
  async () => {
    await using redis = await startRedis();
    await using server = heldServer("late");
    const urls = await seedPaths(redis, server.base, 20, "s");
    await using client = await RespClient.connect(redis.port);
    await using worker = new Run(workArgs(redis, "w1", {
      concurrency: 4,
      queue: 2,
      grace: 200,
    }));
    try {
      await until(
        () => Promise.resolve(server.hits.size === 4),
        "4 requests in flight",
      );
      // What it holds: 4 in flight, 2 queued, never more.
      const summary = await client.call(
        "XPENDING",
        "crawl:frontier",
        "workers",
      );
      assertEquals((summary as [number])[0], 6);
      // As after a failover to a replica: the release's script is gone.
      await client.call("SCRIPT", "FLUSH");
      worker.kill("SIGINT");
      const out = summaryOf(await worker.finished(5_000));
      assertEquals(out.committed, 0);
      assertEquals(out.released, 6);
    } finally {
      server.release();
    }
    assertEquals(await statusJson(redis), {
      frontier: 20,
      pending: { w1: 6 },
      results: 0,
      errors: 0,
    });
    // The default --claim-idle is a minute, and Redis started less than one
    // ago (a hold-off, as after a restart): released entries need no wait.
    const other = summaryOf(
      await run(workArgs(redis, "w2", {
        "idle-exit": 200,
      })),
    );
    assertEquals(other.claimed, 6);
    assertEquals(other.committed, 20);
    const results = await readStream(client, "crawl:results");
    assertEquals(
      results.map((r) => r.fields.url).sort(),
      [...urls].sort(),
    );
  },
);

redisTest(
  "distributed_crawl.ts status --json counts failed URLs as errors",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(() =>
      new Response("", { status: 404 })
    );
    using closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const refused = `http://127.0.0.1:${closed.addr.port}/gone`;
    closed.close();
    const seeded = await run([
      "seed",
      "--redis",
      redis.url,
      "--prefix",
      "t1:",
      `${server.base}/a`,
      refused,
    ]);
    assertEquals(seeded.code, 0, seeded.stderr);
    const args = ["--redis", redis.url, "--prefix", "t1:"];
    assertEquals(
      JSON.parse((await run(["status", ...args, "--json"])).stdout),
      { frontier: 2, pending: {}, results: 0, errors: 0 },
    );
    const worked = summaryOf(
      await run([
        "work",
        ...args,
        "--name",
        "w",
        "--idle-exit",
        "100",
        "--json",
      ]),
    );
    assertEquals(worked.fetched, 2);
    assertEquals(
      JSON.parse((await run(["status", ...args, "--json"])).stdout),
      { frontier: 0, pending: { w: 0 }, results: 2, errors: 1 },
    );
    await using client = await RespClient.connect(redis.port);
    const results = await readStream(client, "t1:results");
    const failed = results.find((r) => r.fields.url === refused)!.fields;
    assertEquals(failed.ok, "false");
    assertEquals(failed.status, "");
    assert(failed.error!.length > 0 && !failed.error!.includes("\n"));
    const text = await run(["status", ...args]);
    assertEquals(text.code, 0);
    assert(text.stdout.includes("errors    1"), text.stdout);
  },
);

redisTest(
  "distributed_crawl.ts work exits 2 with one line when another live worker has its name in its database, and leaves that worker and its entry alone",
  async () => {
    await using redis = await startRedis();
    await using server = await seedHeld(redis);
    await using first = new Run(workArgs(redis, "x", { "idle-exit": 200 }));
    try {
      await until(
        () => Promise.resolve(server.hits.get("/slow") === 1),
        "the first worker fetching",
      );
      const second = await run(workArgs(redis, "x", {}));
      assertEquals(second.code, 2, second.stderr);
      const lines = second.stderr.trim().split("\n");
      assertEquals(lines.length, 1, second.stderr);
      assertStringIncludes(lines[0]!, 'another worker named "x"');
      // Another crawl, in another database of this Redis: its own "x".
      const elsewhere = await run([
        "work",
        "--redis",
        `${redis.url}/1`,
        "--name",
        "x",
        "--idle-exit",
        "200",
        "--json",
      ]);
      assertEquals(elsewhere.code, 0, elsewhere.stderr);
    } finally {
      server.release();
    }
    assertEquals(summaryOf(await first.finished()).fetched, 1);
    assertEquals(server.hits.get("/slow"), 1, "fetched once");
  },
);

redisTest(
  "distributed_crawl.ts seed -i streams its list: a bad line past 2,500 URLs seeds those before it and says so, and seeding the fixed list adds only the rest",
  async () => {
    await using redis = await startRedis();
    const file = await Deno.makeTempFile({ suffix: ".txt" });
    try {
      const urls = Array.from(
        { length: 3_000 },
        (_, i) => `http://a.test/${i}`,
      );
      const lines = [
        ...urls.slice(0, 2_500),
        "ftp://bad/",
        ...urls.slice(2_500),
      ];
      await Deno.writeTextFile(file, lines.join("\n"));
      const bad = await run(["seed", "--redis", redis.url, "-i", file]);
      assertEquals(bad.code, 2, bad.stderr);
      assertStringIncludes(
        bad.stderr,
        `${file}:2501: invalid URL "ftp://bad/"`,
      );
      assertStringIncludes(bad.stderr, "the 2500 URLs before it were seeded");
      const status = await run(["status", "--redis", redis.url, "--json"]);
      assertEquals(JSON.parse(status.stdout).frontier, 2_500);
      await Deno.writeTextFile(file, urls.join("\r\n") + "\r\n");
      const fixed = await run(["seed", "--redis", redis.url, "-i", file]);
      assertEquals(fixed.code, 0, fixed.stderr);
      assertEquals(
        fixed.stdout.trim(),
        "seeded 500 new URLs (2500 already seen) into crawl:frontier",
      );
    } finally {
      await Deno.remove(file);
    }
  },
);

redisTest(
  "distributed_crawl.ts seed -i stops at a bad first line with that line alone, nothing seeded",
  async () => {
    await using redis = await startRedis();
    const file = await Deno.makeTempFile({ suffix: ".txt" });
    try {
      await Deno.writeTextFile(file, "ftp://bad/\nhttp://a.test/1\n");
      const bad = await run(["seed", "--redis", redis.url, "-i", file]);
      assertEquals(bad.code, 2, bad.stderr);
      assertStringIncludes(bad.stderr, `${file}:1: invalid URL "ftp://bad/"`);
      // No "(the 0 URLs before it were seeded ...)".
      assert(!bad.stderr.includes("were seeded"), bad.stderr);
      await using client = await RespClient.connect(redis.port);
      assertEquals(await client.call("EXISTS", "crawl:seen"), 0);
    } finally {
      await Deno.remove(file);
    }
  },
);

redisTest(
  "distributed_crawl.ts seed -i - sends a chunk again that its dropped connection lost while the list was still coming, and stops at a frontier flushed meanwhile",
  async () => {
    await using redis = await startRedis();
    await using client = await RespClient.connect(redis.port);
    const lines = (from: number) =>
      Array.from(
        { length: 1_000 },
        (_, i) => `http://127.0.0.1:9/s/${from + i}\n`,
      ).join("");
    const seedArgs = ["seed", "--redis", redis.url, "-i", "-"];
    const blocked = async () =>
      /^blocked_clients:[1-9]/m.test(String(await client.call("INFO")));
    {
      await using seed = new Run(seedArgs, { stdin: true });
      await seed.write(lines(0));
      await until(
        async () => await client.call("SCARD", "crawl:seen") === 1_000,
        "the first chunk",
      );
      // The second chunk waits in Redis when the connection drops, and the
      // seed waits for more lines: its failure went unseen (exit 0, 1,000
      // URLs never queued, counted as "already seen").
      await client.call("CLIENT", "PAUSE", 5_000, "WRITE");
      await seed.write(lines(1_000));
      await until(blocked, "the second chunk held");
      await client.call("CLIENT", "KILL", "TYPE", "normal"); // not this one
      await client.call("CLIENT", "UNPAUSE");
      await seed.closeStdin();
      const out = await seed.finished();
      assertEquals(out.code, 0, out.stderr);
      assertStringIncludes(out.stdout, "seeded 2000 new URLs (0 already seen)");
      assertEquals(await client.call("SCARD", "crawl:seen"), 2_000);
      assertEquals(await client.call("XLEN", "crawl:frontier"), 2_000);
    }
    {
      await using seed = new Run(seedArgs, { stdin: true });
      await seed.write(lines(2_000));
      await until(
        async () => await client.call("SCARD", "crawl:seen") === 3_000,
        "the third chunk",
      );
      // A flush (or a restart without persistence) mid-seed: the rest made a
      // frontier of its own, with no consumer group, and exit 0.
      await client.call("FLUSHALL");
      await seed.write(lines(3_000));
      await seed.closeStdin();
      const out = await seed.finished();
      assertEquals(out.code, 1, out.stderr);
      assertStringIncludes(out.stderr, "Redis lost the crawl's state");
      assertEquals(await client.call("EXISTS", "crawl:frontier"), 0);
    }
  },
);

redisTest(
  "distributed_crawl.ts exits 2 with one line for bad usage, 0 for --help",
  async () => {
    const cases: [string[], string][] = [
      [[], "missing command"],
      [["crawl"], 'unknown command "crawl"'],
      [["work", "--redis", "redis://127.0.0.1:1"], "work needs --name"],
      [["status"], "status needs --redis"],
      [["seed", "--redis", "http://x"], 'invalid --redis "http://x"'],
      [
        ["seed", "--redis", "redis://127.0.0.1:1", "ftp://x/"],
        'invalid URL "ftp://x/"',
      ],
      [
        ["status", "--redis", "redis://127.0.0.1:1", "--follow"],
        "--follow does not apply to status",
      ],
      [[
        "work",
        "--redis",
        "redis://127.0.0.1:1",
        "--name",
        "w",
        "--concurrency",
        "0",
      ], "--concurrency must be an integer >= 1"],
      [["work", "--bogus"], "unknown option --bogus"],
      [
        ["status", "--redis", "redis://127.0.0.1:1/abc"],
        "its path is a database number",
      ],
      // Past what a timer can wait: it would fire at once.
      [[
        "work",
        "--redis",
        "redis://127.0.0.1:1",
        "--name",
        "w",
        "--grace",
        "4000000000",
      ], "--grace must be at most 2147483647"],
      // Passwords with an unescaped "/", "@" or "#": none of them in the message.
      [
        ["status", "--redis", "redis://:s3cr@t/p:w@127.0.0.1:1"],
        'invalid --redis "redis://***@127.0.0.1:1"',
      ],
      [
        ["status", "--redis", "redis://:se/cret@127.0.0.1:1"],
        'invalid --redis "redis://***@127.0.0.1:1"',
      ],
      [
        ["status", "--redis", "redis://:p#ss@127.0.0.1:1"],
        'invalid --redis "redis://***@127.0.0.1:1"',
      ],
      [
        ["status", "--redis", "redis://default:2024/Secret@127.0.0.1:1"],
        'invalid --redis "redis://***@127.0.0.1:1"',
      ],
      // Typos of the scheme's slashes: the password still hidden.
      [
        ["status", "--redis", "redis:/:Secret@127.0.0.1:1"],
        'invalid --redis "redis:/***@127.0.0.1:1"',
      ],
      [
        ["status", "--redis", "redis:Secret@127.0.0.1:1"],
        'invalid --redis "redis:***@127.0.0.1:1"',
      ],
      [
        ["status", "--redis", ":Secret@127.0.0.1:1"],
        'invalid --redis "***@127.0.0.1:1"',
      ],
    ];
    // Each a process of its own: run together, checked in order.
    const [help, down, ...outs] = await runEach([
      ["--help"],
      ["status", "--redis", "redis://127.0.0.1:1"],
      ...cases.map(([args]) => args),
    ]);
    assertEquals(help!.code, 0);
    assert(help!.stdout.startsWith("Usage: distributed_crawl.ts"));
    for (const [i, [args, message]] of cases.entries()) {
      const out = outs[i]!;
      assertEquals(out.code, 2, args.join(" "));
      assertEquals(out.stdout, "");
      const lines = out.stderr.trim().split("\n");
      assertEquals(lines.length, 1, out.stderr);
      assert(lines[0]!.includes(message), `${args.join(" ")}: ${lines[0]}`);
    }
    assertEquals(down!.code, 1);
    assert(
      down!.stderr.includes("Cannot connect to redis://127.0.0.1:1"),
      down!.stderr,
    );
  },
);

redisTest(
  "distributed_crawl.ts work writes no result for an entry another worker claimed while it was slow",
  async () => {
    await using redis = await startRedis();
    await using server = await seedHeld(redis);
    const url = `${server.base}/slow`;
    const work = (name: string, claimIdle: string) =>
      new Run(workArgs(redis, name, {
        "claim-idle": claimIdle,
        "idle-exit": 300,
      }));
    await using slow = work("slow", "60000");
    let fast: Run | undefined;
    try {
      // The slow worker fetches first; the other claims its entry after 200 ms.
      await until(
        () => Promise.resolve(server.hits.get("/slow") === 1),
        "the first worker fetching",
      );
      fast = work("fast", "200");
      await until(
        () => Promise.resolve(server.hits.get("/slow") === 2),
        "both workers fetching",
      );
    } catch (e) {
      await fast?.[Symbol.asyncDispose]();
      throw e;
    } finally {
      server.release();
    }
    await using _fast = fast;
    const [a, b] = [
      summaryOf(await slow.finished()),
      summaryOf(await fast.finished()),
    ];
    assertEquals([a.fetched, a.committed, a.lost], [1, 0, 1]);
    assertEquals([b.fetched, b.committed, b.lost, b.claimed], [1, 1, 0, 1]);
    await using client = await RespClient.connect(redis.port);
    const results = await readStream(client, "crawl:results");
    assertEquals(results.map((r) => [r.fields.url, r.fields.worker]), [[
      url,
      "fast",
    ]]);
  },
);

redisTest(
  "distributed_crawl.ts work --origin-delay spaces the starts on each origin across workers, origins in parallel",
  async () => {
    await using redis = await startRedis();
    const DELAY = 200;
    const arrivals = new Map<string, number[]>();
    const origin = (name: string) => {
      const times: number[] = [];
      arrivals.set(name, times);
      return countingServer(() => {
        times.push(performance.now());
        return new Response("ok");
      });
    };
    await using a = origin("a");
    await using b = origin("b");
    const urls = Array.from({ length: 8 }, (_, i) => [
      `${a.base}/${i}`,
      `${b.base}/${i}`,
    ]).flat();
    await seedFile(redis, urls);
    const work = (name: string) =>
      run(workArgs(redis, name, {
        "origin-delay": String(DELAY),
        // Small, so that both workers hold URLs of both origins.
        concurrency: 2,
        queue: 2,
        "idle-exit": 300,
      }));
    const summaries = (await Promise.all([work("w1"), work("w2")])).map(
      summaryOf,
    );
    assertEquals(summaries.reduce((n, s) => n + s.committed, 0), urls.length);
    assert(summaries.every((s) => s.fetched > 0), "one worker did everything");
    for (const [name, times] of arrivals) {
      assertEquals(times.length, 8, name);
      times.sort((x, y) => x - y);
      // The reservations are exact on Redis's clock; timers, process scheduling
      // and loopback delay each start a little, by varying amounts.
      for (let i = 1; i < times.length; i++) {
        const gap = times[i]! - times[i - 1]!;
        assert(
          gap >= DELAY / 2,
          `${name}: ${gap.toFixed(0)} ms between starts`,
        );
      }
      const span = times[7]! - times[0]!;
      assert(
        span >= 7 * DELAY - 60,
        `${name}: 8 starts in ${span.toFixed(0)} ms`,
      );
    }
    // Neither origin waited for the other's URLs.
    const [ta, tb] = [arrivals.get("a")!, arrivals.get("b")!];
    assert(Math.abs(ta[0]! - tb[0]!) < 4 * DELAY);
    assert(Math.abs(ta[7]! - tb[7]!) < 4 * DELAY);
  },
);

redisTest(
  "distributed_crawl.ts work fetches its own slow entry once when its XAUTOCLAIM claims it back",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(async () => {
      // Three claim scans (every 200 ms) happen while this response waits.
      await new Promise((resolve) => setTimeout(resolve, 800));
      return new Response("slow");
    });
    await seedUrl(redis, `${server.base}/x`);
    const out = summaryOf(
      await run(workArgs(redis, "w", {
        "claim-idle": 200,
        "idle-exit": 200,
      })),
    );
    assertEquals(server.hits.get("/x"), 1);
    assertEquals([out.fetched, out.committed, out.lost, out.claimed], [
      1,
      1,
      0,
      0,
    ]);
  },
);

redisTest(
  "distributed_crawl.ts work on SIGINT lets the URLs it took finish within --grace and commits them",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(okAfter(300));
    await seedPaths(redis, server.base, 20, "s");
    await using worker = new Run(workArgs(redis, "w1", {
      concurrency: 2,
      queue: 1,
    }));
    await until(
      () => Promise.resolve(server.hits.size === 2),
      "2 requests in flight",
    );
    worker.kill("SIGINT");
    const out = summaryOf(await worker.finished(5_000));
    // The two in flight and the one queued in fetchEach: nothing else was read.
    assertEquals([out.committed, out.released], [3, 0]);
    assertEquals(server.hits.size, 3);
    assertEquals(await statusJson(redis), {
      frontier: 17,
      pending: { w1: 0 },
      results: 3,
      errors: 0,
    });
  },
);

redisTest(
  "distributed_crawl.ts work keeps renewing what it holds through --grace after SIGINT: another worker does not take it",
  async () => {
    await using redis = await startRedis();
    // Slow enough that the other worker is up and scanning while they run.
    await using server = countingServer(okAfter(3_000));
    await seedPaths(redis, server.base, 2, "g");
    await using stopping = new Run(workArgs(redis, "stopping", {
      concurrency: 2,
      queue: 0,
      "claim-idle": 300,
      grace: 8_000,
    }));
    await until(
      () => Promise.resolve(server.hits.size === 2),
      "both URLs in flight",
    );
    stopping.kill("SIGINT");
    // A live worker scanning for idle entries all through the grace time (it
    // cannot find the crawl idle while the entries are pending: a short
    // --idle-exit only ends it sooner after their commit, and makes its
    // blocking reads, and so its claim scans, come more often).
    const other = await run(workArgs(redis, "other", {
      "claim-idle": 300,
      "idle-exit": 300,
    }));
    const out = summaryOf(await stopping.finished(10_000));
    assertEquals([out.committed, out.lost], [2, 0]);
    assertEquals(summaryOf(other).claimed, 0);
    assertEquals(server.hits.get("/g/0"), 1);
    assertEquals(server.hits.get("/g/1"), 1);
  },
);

redisTest(
  "distributed_crawl.ts work rides out a Redis restart: every URL still has exactly one result",
  async () => {
    await using redis = await startRedis({ appendOnly: true });
    await using server = countingServer(okAfter(5));
    const urls = await seedPaths(redis, server.base, 2_000, "r");
    const workers = ["w1", "w2"].map((name) =>
      new Run(workArgs(redis, name, {
        concurrency: 16,
        "idle-exit": 200,
      }))
    );
    try {
      {
        await using client = await RespClient.connect(redis.port);
        await until(
          async () => Number(await client.call("XLEN", "crawl:results")) >= 500,
          "a quarter of the results",
        );
      }
      // The scripts are lost with the process: the workers load them again.
      await redis.restart();
      const summaries = [
        summaryOf(await workers[0]!.finished(30_000)),
        summaryOf(await workers[1]!.finished(30_000)),
      ];
      const fetched = summaries.reduce((n, s) => n + s.fetched, 0);
      assert(fetched >= urls.length, `${fetched} fetched`);
      await using client = await RespClient.connect(redis.port);
      const results = await readStream(client, "crawl:results");
      assertEquals(results.length, urls.length);
      assertEquals(new Set(results.map((r) => r.fields.url)).size, urls.length);
      assertEquals(await statusJson(redis), {
        frontier: 0,
        pending: { w1: 0, w2: 0 },
        results: urls.length,
        errors: 0,
      });
    } finally {
      for (const worker of workers) await worker[Symbol.asyncDispose]();
    }
  },
);

redisTest(
  "distributed_crawl.ts work renews the entries it holds: live workers waiting out --origin-delay never take and fetch each other's",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(() => new Response("ok"));
    // Starts 100 ms apart on one origin, shared by two workers holding 4
    // entries each: an entry waits up to ~800 ms in its worker, past
    // --claim-idle, while the other worker, whenever it has room, scans.
    const urls = await seedPaths(redis, server.base, 30, "d");
    const work = (name: string) =>
      run(workArgs(redis, name, {
        "origin-delay": 100,
        "claim-idle": 300,
        concurrency: 2,
        queue: 2,
        "idle-exit": 200,
      }));
    const summaries = (await Promise.all([work("w1"), work("w2")])).map(
      summaryOf,
    );
    for (let i = 0; i < urls.length; i++) {
      assertEquals(server.hits.get(`/d/${i}`), 1, `/d/${i}`);
    }
    assertEquals(summaries.map((s) => [s.lost, s.claimed]), [[0, 0], [0, 0]]);
    assertEquals(summaries.reduce((n, s) => n + s.committed, 0), urls.length);
  },
);

redisTest(
  "distributed_crawl.ts work on a Redis that refuses INFO (an ACL) claims a dead worker's entry, taking Redis as long up",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(() => new Response("ok"));
    await seedUrl(redis, `${server.base}/a`);
    {
      await using client = await RespClient.connect(redis.port);
      // Read by a worker that died with it, a minute ago.
      const [[, [[id]]]] = await client.call(
        "XREADGROUP",
        "GROUP",
        "workers",
        "gone",
        "COUNT",
        "1",
        "STREAMS",
        "crawl:frontier",
        ">",
      ) as [[string, [[string, unknown]]]];
      await client.call(
        "XCLAIM",
        "crawl:frontier",
        "workers",
        "gone",
        "0",
        id,
        "IDLE",
        "60000",
      );
      assertEquals(
        await client.call("ACL", "SETUSER", "default", "-info"),
        "OK",
      );
      const refused = await client.call("INFO", "server").then(
        () => null,
        (error: Error) => error.message,
      );
      assertStringIncludes(String(refused), "NOPERM");
    }
    // Redis is a second old: a worker that took a refused INFO for a fresh
    // start would claim nothing for 30 s, and run() fails after 20.
    const summary = summaryOf(
      await run(
        workArgs(redis, "w1", { "claim-idle": 30_000, "idle-exit": 300 }),
      ),
    );
    assertEquals([summary.fetched, summary.claimed], [1, 1]);
    assertEquals(server.hits.get("/a"), 1);
  },
);

redisTest(
  "distributed_crawl.ts work and seed under an ACL short of a command their scripts run stop at start and name it, before writing anything",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(() => new Response("ok"));
    await seedUrl(redis, `${server.base}/a`);
    {
      await using client = await RespClient.connect(redis.port);
      // The commit script would add the result, then fail on XDEL: the entry
      // acknowledged and never deleted, its links never queued.
      assertEquals(
        await client.call("ACL", "SETUSER", "default", "-xdel"),
        "OK",
      );
    }
    const work = await run(workArgs(redis, "w1", { "idle-exit": 500 }));
    assertEquals(work.code, 1, work.stderr);
    assertStringIncludes(
      work.stderr,
      "this Redis user may not run XDEL crawl:frontier, which the crawl's scripts need",
    );
    assertEquals(server.hits.size, 0);
    {
      await using client = await RespClient.connect(redis.port);
      assertEquals(await client.call("XLEN", "crawl:results"), 0);
      assertEquals(
        await client.call("ACL", "SETUSER", "default", "+xdel", "-sadd"),
        "OK",
      );
    }
    const seed = await run(["seed", "--redis", redis.url, `${server.base}/b`]);
    assertEquals(seed.code, 1, seed.stderr);
    assertStringIncludes(seed.stderr, "may not run SADD crawl:seen");
    {
      await using client = await RespClient.connect(redis.port);
      // A seeding user, with the seed's keys alone: enough.
      assertEquals(
        await client.call(
          "ACL",
          "SETUSER",
          "default",
          "+sadd",
          "resetkeys",
          "~crawl:frontier",
          "~crawl:seen",
        ),
        "OK",
      );
    }
    const seeder = await run([
      "seed",
      "--redis",
      redis.url,
      `${server.base}/c`,
    ]);
    assertEquals(seeder.code, 0, seeder.stderr);
  },
);

redisTest(
  "distributed_crawl.ts work says at start that a Redis evicting any key (allkeys-lru) can lose the crawl's state",
  async () => {
    await using redis = await startRedis();
    {
      await using client = await RespClient.connect(redis.port);
      await client.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru");
    }
    const out = await run(workArgs(redis, "w1", { "idle-exit": 200 }));
    assertEquals(out.code, 0, out.stderr);
    assertStringIncludes(
      out.stderr,
      "Redis evicts any key at its maxmemory (maxmemory-policy allkeys-lru)",
    );
  },
);

redisTest(
  "distributed_crawl.ts status reads a Redis at its maxmemory (noeviction), where a MULTI is refused",
  async () => {
    await using redis = await startRedis();
    await seedUrl(redis, "http://127.0.0.1:1/a");
    {
      await using client = await RespClient.connect(redis.port);
      await client.call("CONFIG", "SET", "maxmemory", "1");
    }
    const out = await run(["status", "--redis", redis.url, "--json"]);
    assertEquals(out.code, 0, out.stderr);
    assertEquals(JSON.parse(out.stdout).frontier, 1);
  },
);

redisTest(
  "distributed_crawl.ts work with an empty frontier waits without spinning a core",
  async () => {
    await using redis = await startRedis();
    const summary = summaryOf(
      // Two blocking reads of 1 s: the first finds the crawl idle, the
      // second ends it, 1 s later.
      await run(workArgs(redis, "idle", { "idle-exit": 1_000 })),
    );
    assertEquals(summary.fetched, 0);
    assert(summary.seconds >= 1.4, `${summary.seconds} s`);
    // Spinning would take about as much CPU as time went by.
    assert(
      summary.crawlCpuSeconds < summary.seconds / 3,
      `${summary.crawlCpuSeconds} s of CPU in ${summary.seconds} s`,
    );
  },
);

redisTest(
  "distributed_crawl.ts gives up on a Redis that accepts connections and never answers, and says so",
  async () => {
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      try {
        for await (const conn of silent) held.push(conn);
      } catch { /* closed */ }
    })();
    try {
      const url = `redis://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`;
      const started = performance.now();
      const out = await run(["status", "--redis", url], 20_000);
      assertEquals(out.code, 1, out.stderr);
      assert(out.stderr.includes("did not answer"), out.stderr);
      assert(performance.now() - started < 15_000);
    } finally {
      silent.close();
      await accepting;
      for (const conn of held) conn.close();
    }
  },
);

/**
 * A loopback proxy in front of Redis that, once each, loses the reply of the
 * first command whose request matches a pattern: it forwards the request, drops
 * what Redis answers, then closes that connection (as a connection dropped
 * after Redis ran a command and before its answer came back).
 */
class ReplyLosingProxy implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks: Promise<void>[] = [];
  readonly #accepting: Promise<void>;
  /** The patterns not yet matched; each loses one reply. */
  readonly pending: Set<RegExp>;
  /** How many matches of a pattern pass before the one whose reply is lost. */
  readonly #skip: Map<RegExp, number>;
  /** Once every reply is lost: the first request matching it has its reply held `ms`. */
  #delay: { pattern: RegExp; ms: number } | null;

  constructor(
    redisPort: number,
    patterns: RegExp[],
    options: {
      skip?: Map<RegExp, number>;
      delay?: { pattern: RegExp; ms: number };
    } = {},
  ) {
    this.pending = new Set(patterns);
    this.#skip = new Map(options.skip);
    this.#delay = options.delay ?? null;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.#accepting = (async () => {
      try {
        for await (const client of listener) {
          this.#tasks.push(this.#serve(client, redisPort));
        }
      } catch { /* closed */ }
    })();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#listener.addr.port}`;
  }

  async #serve(client: Deno.Conn, redisPort: number): Promise<void> {
    this.#conns.add(client);
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: redisPort });
    } catch {
      client.close();
      this.#conns.delete(client);
      return;
    }
    this.#conns.add(server);
    let mute = false;
    let hold = 0;
    const close = () => {
      for (const conn of [client, server]) {
        if (this.#conns.delete(conn)) conn.close();
      }
    };
    const upstream = (async () => {
      const buf = new Uint8Array(64 * 1024);
      let text = "";
      for (let n; (n = await client.read(buf)) !== null;) {
        const chunk = buf.subarray(0, n);
        // A request may come in several reads: match on what came since the last match.
        text = (text + new TextDecoder("latin1").decode(chunk)).slice(-65536);
        const hit = [...this.pending].find((p) => p.test(text));
        if (hit !== undefined) {
          text = "";
          const skip = this.#skip.get(hit) ?? 0;
          this.#skip.set(hit, skip - 1);
          if (skip <= 0) {
            this.pending.delete(hit);
            mute = true;
          }
        } else if (
          this.pending.size === 0 && this.#delay?.pattern.test(text)
        ) {
          hold = this.#delay.ms;
          this.#delay = null;
        }
        for (let off = 0; off < n;) {
          off += await server.write(chunk.subarray(off));
        }
        if (mute) {
          // Let Redis run it and answer into the void, then drop the conn.
          await new Promise((resolve) => setTimeout(resolve, 300));
          return;
        }
      }
    })();
    const downstream = (async () => {
      const buf = new Uint8Array(64 * 1024);
      for (let n; (n = await server.read(buf)) !== null;) {
        if (mute) continue;
        if (hold > 0) {
          await new Promise((resolve) => setTimeout(resolve, hold));
          hold = 0;
        }
        const chunk = buf.subarray(0, n);
        for (let off = 0; off < n;) {
          off += await client.write(chunk.subarray(off));
        }
      }
    })();
    await upstream.catch(() => {});
    close();
    await downstream.catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) conn.close();
    this.#conns.clear();
    await Promise.all(this.#tasks);
  }
}

/** One worker, w1, concurrency 16, through `redisUrl` (a proxy in front of Redis). */
function workThrough(redisUrl: string): string[] {
  return [
    "work",
    "--redis",
    redisUrl,
    "--name",
    "w1",
    "--concurrency",
    "16",
    "--idle-exit",
    "500",
    "--json",
  ];
}

redisTest(
  "distributed_crawl.ts work counts right when Redis ran a commit batch or a read whose reply was lost: nothing lost, nothing recovered",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(okAfter(2));
    const urls = await seedPaths(redis, server.base, 300, "l");
    // A commit batch (EVALSHA ... crawl:results ... EXEC) and a read of new
    // entries (XREADGROUP ... >): each one's reply lost once.
    await using proxy = new ReplyLosingProxy(redis.port, [
      /EVALSHA[^]*crawl:results[^]*EXEC\r\n/,
      /XREADGROUP[^]*\r\n>\r\n/,
    ]);
    const out = await run(workThrough(proxy.url), 30_000);
    assertEquals(proxy.pending.size, 0, "a reply was not lost");
    const summary = summaryOf(out);
    await using client = await RespClient.connect(redis.port);
    const results = await readStream(client, "crawl:results");
    assertEquals(results.length, urls.length);
    assertEquals(new Set(results.map((r) => r.fields.url)).size, urls.length);
    assertEquals(
      {
        fetched: summary.fetched,
        committed: summary.committed,
        lost: summary.lost,
        claimed: summary.claimed,
        recovered: summary.recovered,
      },
      {
        fetched: urls.length,
        committed: urls.length,
        lost: 0,
        claimed: 0,
        recovered: 0,
      },
    );
  },
);

redisTest(
  "distributed_crawl.ts work fetches once the entries it commits while a re-read of its own pending ones is on the wire",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(okAfter(600));
    // 32 read first, 16 by the read that loses its reply, 16 after it.
    const urls = await seedPaths(redis, server.base, 64, "r");
    // The second read of new entries loses its reply (the conn drops), so the
    // worker reads its own pending entries again; that reply is held 1.5 s,
    // while the entries it still holds from the first read are committed.
    const newRead = /XREADGROUP[^]*\r\n>\r\n/;
    await using proxy = new ReplyLosingProxy(redis.port, [newRead], {
      skip: new Map([[newRead, 1]]),
      delay: { pattern: /XREADGROUP[^]*\r\n0\r\n/, ms: 1_500 },
    });
    const out = await run(workThrough(proxy.url), 30_000);
    assertEquals(proxy.pending.size, 0, "no reply was lost");
    const summary = summaryOf(out);
    const twice = [...server.hits].filter(([, n]) => n > 1);
    assertEquals(twice, [], "fetched more than once");
    assertEquals(server.hits.size, urls.length);
    assertEquals(
      { fetched: summary.fetched, lost: summary.lost },
      { fetched: urls.length, lost: 0 },
    );
  },
);

Deno.test("sameOriginLinks() returns every same-origin link of a page, 3,000 of them too", () => {
  const html =
    Array.from({ length: 3_000 }, (_, i) => `<a href="/p/${i}">${i}</a>`)
      .join("\n") +
    '<a href="/p/0#again">dup</a><a href="http://other.test/">x</a>';
  const links = sameOriginLinks(html, "http://a.test/");
  assertEquals(links.length, 3_000);
  assertEquals(links[2_999], "http://a.test/p/2999");
});

Deno.test("sameOriginLinks() decodes numeric character references in href (WordPress's &#038;) and skips links in comments and scripts", () => {
  const html = `<a href="/?p=1&#038;page=2">a</a> <a href="/a&#x2F;b">b</a>
    <a href="/s?a=1&#38;b=2">c</a> <!-- <a href="/commented">x</a> -->
    <script>var s = '<a href="/in-script">';</script>`;
  assertEquals(sameOriginLinks(html, "http://a.test/blog/"), [
    "http://a.test/?p=1&page=2",
    "http://a.test/a/b",
    "http://a.test/s?a=1&b=2",
  ]);
});

Deno.test("sameOriginLinks() reads a page's bytes in its encoding: windows-1252 by its Content-Type or its <meta charset>, not as UTF-8", () => {
  // "café" in windows-1252: é is the one byte 0xE9.
  const bytes = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
  const link = bytes('<a href="/caf\xe9">c</a>');
  const typed = new Headers({
    "content-type": "text/html; charset=windows-1252",
  });
  assertEquals(sameOriginLinks(link, "http://a.test/", Infinity, typed), [
    "http://a.test/caf%C3%A9",
  ]);
  const meta = bytes('<meta charset="windows-1252"><a href="/caf\xe9">c</a>');
  assertEquals(
    sameOriginLinks(meta, "http://a.test/", Infinity, new Headers()),
    [
      "http://a.test/caf%C3%A9",
    ],
  );
});

Deno.test("sameOriginLinks() reads a page of unclosed '<a ' tags in time linear in its size: 160 KB of them take no more than 10x an ordinary page of links as long", () => {
  const time = (html: string) => {
    const start = performance.now();
    sameOriginLinks(html, "http://a.test/");
    return performance.now() - start;
  };
  const hostile = "<a ".repeat(160_000 / 3);
  const ordinary = '<a href="/x">x</a>\n'.repeat(160_000 / 19);
  // Warm both paths first; then the medians of 3.
  time(hostile.slice(0, 3_000));
  time(ordinary.slice(0, 3_000));
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[1]!;
  const ordinaryMs = median([time(ordinary), time(ordinary), time(ordinary)]);
  const hostileMs = median([time(hostile), time(hostile), time(hostile)]);
  assert(
    hostileMs <= 10 * Math.max(ordinaryMs, 1),
    `${hostileMs.toFixed(1)} ms against ${ordinaryMs.toFixed(1)} ms`,
  );
});

redisTest(
  "distributed_crawl.ts work says Redis lost the crawl's state when its keys vanish, busy or idle in XREADGROUP, and exits 1",
  async () => {
    // Busy: NOGROUP from a script. Idle on an empty frontier: UNBLOCKED.
    for (const [urls, idle] of [[2_000, false], [5, true]] as const) {
      await using redis = await startRedis();
      await using server = countingServer(okAfter(5));
      await seedPaths(redis, server.base, urls, "f");
      await using worker = new Run(workArgs(redis, "w1", {
        concurrency: 8,
        "idle-exit": 5_000,
      }));
      {
        await using client = await RespClient.connect(redis.port);
        const enough = idle ? urls : 100;
        await until(
          async () =>
            Number(await client.call("XLEN", "crawl:results")) >= enough,
          "results",
        );
        // Idle: blocked in XREADGROUP on the empty frontier by now.
        if (idle) await new Promise((r) => setTimeout(r, 300));
        await client.call("FLUSHALL");
      }
      const out = await worker.finished(30_000);
      assertEquals(out.code, 1, out.stderr);
      assertStringIncludes(out.stderr, "Redis lost the crawl's state");
    }
  },
);

redisTest(
  "distributed_crawl.ts work --follow queues a redirect's target as a link: same origin once, another origin never, a raw UTF-8 Location as UTF-8",
  async () => {
    await using redis = await startRedis();
    await using offsite = countingServer(() => new Response("elsewhere"));
    await using server = countingServer((path) => {
      switch (path) {
        case "/start":
          return new Response(
            '<a href="/go-away">a</a><a href="/go-same">b</a><a href="/target">c</a><a href="/go-utf8">d</a>',
            { headers: { "content-type": "text/html" } },
          );
        case "/go-utf8":
          // "/café" in UTF-8, a byte a character: read as Latin-1, it would
          // lead to /caf%C3%83%C2%A9.
          return new Response(null, {
            status: 302,
            headers: { location: "/caf\xc3\xa9" },
          });
        case "/go-away":
          return Response.redirect(`${offsite.base}/landing`, 302);
        case "/go-same":
          return new Response(null, {
            status: 302,
            headers: { location: "/target#x" },
          });
        default:
          return new Response("leaf");
      }
    });
    await seedUrl(redis, `${server.base}/start`);
    const out = await run(
      workArgs(redis, "w", { follow: true, "idle-exit": 200 }),
    );
    assertEquals(out.code, 0, out.stderr);
    assertEquals(offsite.hits.size, 0, "no fetch off the origin");
    assertEquals(server.hits.get("/target"), 1);
    assertEquals(
      [...server.hits.keys()].sort(),
      ["/caf%C3%A9", "/go-away", "/go-same", "/go-utf8", "/start", "/target"],
    );
    assertEquals((await statusJson(redis) as { results: number }).results, 6);
  },
);

redisTest(
  "distributed_crawl.ts work --follow adds a page's 2,500 links in slices, each fetched once",
  async () => {
    await using redis = await startRedis();
    const LINKS = 2_500;
    await using server = countingServer((path) =>
      path === "/many"
        ? new Response(
          Array.from({ length: LINKS }, (_, i) => `<a href="/l/${i}">${i}</a>`)
            .join(""),
          { headers: { "content-type": "text/html" } },
        )
        : new Response("leaf")
    );
    await seedUrl(redis, `${server.base}/many`);
    const out = await run(workArgs(redis, "w", {
      follow: true,
      concurrency: 32,
      "idle-exit": 200,
    }));
    assertEquals(out.code, 0, out.stderr);
    assertEquals(server.hits.size, LINKS + 1);
    assert([...server.hits.values()].every((n) => n === 1));
    assertEquals(
      (await statusJson(redis) as { results: number }).results,
      LINKS + 1,
    );
  },
);

redisTest(
  "distributed_crawl.ts work --follow normalises a redirect's target and its seeds as links: each page fetched once under two spellings; '///host/path' followed; HTML sniffed as crawl.ts does",
  async () => {
    await using redis = await startRedis();
    let base = "";
    await using server = countingServer((path) => {
      const html = (text: string, type: string | null = "text/html") =>
        new Response(
          text,
          type === null ? {} : { headers: { "content-type": type } },
        );
      switch (path) {
        case "/start":
          return html(
            '<a href="/redir">r</a><a href="/esc%C3%A9">e</a><a href="/tilde/~user">t</a><a href="/triple">3</a><a href="/untyped">u</a><a href="/parsed">p</a>',
          );
        case "/redir":
          return new Response(null, {
            status: 301,
            headers: { location: "/esc%c3%a9" },
          });
        case "/triple":
          return new Response(null, {
            status: 301,
            headers: { location: `///${new URL(base).host}/tripled` },
          });
        case "/untyped":
          // No Content-Type (bytes: Deno.serve types a string text/plain):
          // HTML by its first byte, as a browser sniffs it.
          return new Response(
            new TextEncoder().encode(' <html><a href="/from-untyped">x</a>'),
          );
        case "/parsed":
          return html(
            '<a href="/from-parsed">x</a>',
            "text/x-server-parsed-html",
          );
        default:
          return new Response("leaf");
      }
    });
    base = server.base;
    await seedUrl(redis, `${server.base}/start`);
    await seedUrl(redis, `${server.base}/tilde/%7euser`);
    const out = await run(
      workArgs(redis, "w", { follow: true, "idle-exit": 200 }),
    );
    assertEquals(out.code, 0, out.stderr);
    // Before: /esc%c3%a9 and /esc%C3%A9, /tilde/%7euser and /tilde/~user.
    assertEquals(
      [...server.hits].filter(([, n]) => n > 1),
      [],
    );
    assertEquals(server.hits.get("/esc%C3%A9"), 1);
    assertEquals(server.hits.get("/tilde/~user"), 1);
    assertEquals(server.hits.get("/tripled"), 1);
    assertEquals(server.hits.get("/from-untyped"), 1);
    assertEquals(server.hits.get("/from-parsed"), undefined);
  },
);

redisTest(
  "distributed_crawl.ts work --verbose with its stdout on a full disk stops logging, not working: every URL committed, exit 0",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(() => new Response("ok"));
    const urls = await seedPaths(redis, server.base, 20, "v");
    // A shell, for its redirect to /dev/full (Linux).
    const { code, stderr } = await spawnInShell(
      'exec "$0" "$@" > /dev/full',
      workArgs(redis, "w1", { verbose: true, "idle-exit": 300 })
        .filter((arg) => arg !== "--json"),
    ).output();
    const err = new TextDecoder().decode(stderr);
    assertEquals(code, 0, err);
    assertStringIncludes(
      err,
      "w1: cannot write to standard output (Error: No space left on device",
    );
    assertEquals(await statusJson(redis), {
      frontier: 0,
      pending: { w1: 0 },
      results: urls.length,
      errors: 0,
    });
  },
);

redisTest(
  "distributed_crawl.ts work --verbose whose stdout reader pauses keeps renewing its leases: another worker fetches none of its URLs again",
  async () => {
    await using redis = await startRedis();
    await using server = countingServer(okAfter(5));
    // ~130 KiB of --verbose lines: more than a pipe holds.
    const urls = await seedPaths(redis, server.base, 3_000, "v");
    // Neither finds the crawl idle while an entry is pending: --idle-exit
    // only ends them, once every URL is committed.
    const flags = { concurrency: 16, "claim-idle": 1_000, "idle-exit": 500 };
    // `| less` on its first page: nothing read for 4 s.
    const w1 = spawnInShell(
      '"$0" "$@" | (sleep 4; cat > /dev/null)',
      workArgs(redis, "w1", { ...flags, verbose: true })
        .filter((arg) => arg !== "--json"),
    );
    const w1Out = w1.output();
    try {
      // w1's lines have filled the pipe (~64 KiB, 1,450 of them), and its
      // entries in hand have been idle for longer than --claim-idle since.
      await until(
        () => Promise.resolve(server.hits.size >= 1_600),
        "w1 fetching",
      );
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const w2 = summaryOf(await run(workArgs(redis, "w2", flags), 40_000));
      const { code, stderr } = await w1Out;
      assertEquals(code, 0, new TextDecoder().decode(stderr));
      // Before: w1 froze on its write, its leases lapsed, and w2 claimed
      // and fetched its URLs again.
      assertEquals(w2.claimed, 0);
    } finally {
      try {
        w1.kill("SIGKILL");
      } catch { /* exited */ }
      await w1Out.catch(() => {});
    }
    const twice = [...server.hits].filter(([, n]) => n > 1);
    assertEquals(twice, []);
    assertEquals(server.hits.size, urls.length);
  },
);
