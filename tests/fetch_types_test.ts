/**
 * Type-level checks of the HTTP client's public types, run by `deno check` (the
 * typecheck task) and `deno test`: each `@ts-expect-error` line must fail to type
 * check, or the check itself fails. The runtime parts assert the same facts on a
 * loopback server.
 */
import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import {
  fetchAll,
  type FetchAllOptions,
  fetchEach,
  type FetchEntry,
  type FetchResult,
  HttpClient,
  HttpParseError,
  type HttpParseErrorCode,
  type RequestSpec,
  type RetryOptions,
} from "../mod.ts";
import { cannedServer } from "./_raw_http.ts";

/** Compiles only when `A` and `B` are the same type. */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends
  (<X>() => X extends B ? 1 : 2) ? true : false;
function assertType<_T extends true>(): void {}

interface Job {
  depth: number;
}

function okServer(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => new Response(new URL(req.url).pathname),
  );
}

Deno.test("fetchAll() and fetchEach() type each result's data as the RequestSpecs' data", async () => {
  await using server = okServer();
  const base = `http://127.0.0.1:${server.addr.port}`;
  const specs: RequestSpec<Job>[] = [
    { url: `${base}/a`, data: { depth: 1 } },
    { url: `${base}/b`, data: { depth: 2 } },
  ];
  const depths: number[] = [];
  const results = await fetchAll(specs, {
    onProgress: (_done, _total, result) => {
      assertType<Equal<typeof result, FetchResult<Job>>>();
    },
  });
  assertType<Equal<typeof results, FetchResult<Job>[]>>();
  for (const result of results) {
    // A plain URL in the source has no data: undefined is allowed, no cast.
    assertType<Equal<typeof result.data, Job | undefined>>();
    if (result.ok) depths.push(result.data?.depth ?? -1);
  }
  assertEquals(depths, [1, 2]);

  for await (const entry of fetchEach(specs)) {
    assertType<Equal<typeof entry, FetchEntry<Job>>>();
    assert(entry.result.data !== undefined && entry.result.data.depth > 0);
  }

  // Inferred from object literals, as the fetchAll example writes them.
  const [first] = await fetchAll([{ url: `${base}/a`, data: "page a" }]);
  assertType<Equal<NonNullable<typeof first>["data"], string | undefined>>();
  assertStrictEquals(first?.data, "page a");

  // Data of several types: unknown, as without a type argument.
  const mixed = await fetchAll([
    { url: `${base}/a`, data: "a" },
    { url: `${base}/b`, data: 1 },
  ]);
  assertType<Equal<typeof mixed, FetchResult[]>>();
  assertEquals(mixed.map((r) => r.data), ["a", 1]);

  // A callback as data is callable without a cast (the selector key's idiom).
  type OnBody = (body: Uint8Array) => string;
  const handled = await fetchAll([
    { url: `${base}/cb`, data: ((body) => `${body.length}`) as OnBody },
  ]);
  assert(handled[0]?.ok && handled[0].data?.(handled[0].response.body) === "3");

  // @ts-expect-error: data of the wrong type for an explicit type argument
  await fetchAll<Job>([{ url: "not a url", data: "no" }]);
  // @ts-expect-error: a misspelt field of a spec is still caught
  await fetchAll([{ url: "not a url", data: 1, methd: "POST" }]);
});

Deno.test("HttpParseError.code is typed as the union of the documented codes", async () => {
  await using server = cannedServer(
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
  );
  const [result] = await fetchAll([`http://127.0.0.1:${server.port}/`]);
  assert(result?.ok === false && result.error instanceof HttpParseError);
  const code = result.error.code;
  assertType<Equal<typeof code, HttpParseErrorCode>>();
  assertStrictEquals(code, "truncated-body");
  // @ts-expect-error: a misspelt code does not compile
  assert(code !== "truncated-bdy");
  // @ts-expect-error: nor does constructing one with an unknown code
  assert(new HttpParseError("bad-status", "x").code === "bad-status");
});

Deno.test("options given as undefined type check under exactOptionalPropertyTypes and mean the default", async () => {
  await using server = okServer();
  const url = `http://127.0.0.1:${server.addr.port}/u`;
  // A wrapper forwarding its own optional parameters, as users write them.
  const get = (timeout?: number, method?: string, signal?: AbortSignal) =>
    fetchAll([{ url, timeout, method }], { timeout, method, signal });
  const [result] = await get();
  assert(result?.ok && result.response.status === 200);

  const retry: RetryOptions = { limit: undefined, statuses: [503] as const };
  const options: FetchAllOptions = { retry, perOrigin: { delay: undefined } };
  const [again] = await fetchAll([url], options);
  assert(again?.ok && again.attempts === 1);

  const client = new HttpClient(url, { timeout: undefined, body: undefined });
  assertStrictEquals(client.method, "GET");
  client.close();
});
