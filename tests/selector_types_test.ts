/**
 * Type-level checks of the selector's public types, run by `deno check` (the
 * typecheck task) and `deno test`: each `@ts-expect-error` line must fail to type
 * check, or the check itself fails. The runtime parts assert the same facts.
 */
import { assert, assertStrictEquals } from "@std/assert";
import {
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  type Pollable,
  PollableConn,
  PollableListener,
  type PollableListenOptions,
  Selector,
  type SelectorKey,
} from "../mod.ts";
import { listen, portOf } from "./_net.ts";

/** Compiles only when `A` and `B` are the same type. */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends
  (<X>() => X extends B ? 1 : 2) ? true : false;
function assertType<_T extends true>(): void {}

type Callback = (key: SelectorKey<Callback>, mask: number) => void;

Deno.test("SelectorKey.data of a selector with optional data is typed to allow undefined", () => {
  using sel = new DefaultSelector();
  using listener = listen();
  const key = sel.register(listener, EVENT_READ);
  assertType<Equal<typeof key.data, unknown>>();
  assertStrictEquals(key.data, undefined);

  using named = new DefaultSelector<string | undefined>();
  using other = listen();
  const bare = named.register(other, EVENT_READ);
  assertType<Equal<typeof bare.data, string | undefined>>();
  // @ts-expect-error: may be undefined, so not a string without a check
  const _length = (): number => bare.data.length;
  assertStrictEquals(bare.data, undefined);
  assertStrictEquals(named.modify(other, EVENT_WRITE, "x").data, "x");
  assertStrictEquals(named.modify(other, EVENT_READ).data, undefined);
});

Deno.test("Selector.register() and modify() require data when T excludes undefined", () => {
  using sel = new DefaultSelector<Callback>();
  using listener = listen();
  const calls: number[] = [];
  const key = sel.register(listener, EVENT_READ, (_key, mask) => {
    calls.push(mask);
  });
  // data is a Callback, never undefined: callable without a check.
  assertType<Equal<typeof key.data, Callback>>();
  key.data(key, EVENT_READ);
  assertStrictEquals(calls.length, 1);
  sel.unregister(listener);

  // @ts-expect-error: a Selector<Callback> key cannot be registered without data
  assert(sel.register(listener, EVENT_READ).data === undefined);
  // @ts-expect-error: nor modified without data
  assert(sel.modify(listener, EVENT_WRITE).data === undefined);
  // @ts-expect-error: data of the wrong type
  sel.modify(listener, EVENT_READ, "not a callback");
});

Deno.test("SelectorKey.fileobj needs at most an instanceof narrowing", async () => {
  using sel = new DefaultSelector<string>();
  using listener = listen();
  sel.register(listener, EVENT_READ, "listener");
  using _client = await Deno.connect({ port: portOf(listener) });
  const batch = await sel.select(5_000);
  let accepted: PollableConn | null = null;
  for (const [key] of batch) {
    assertType<Equal<typeof key.fileobj, Pollable>>();
    // @ts-expect-error: a Pollable has no accept() until narrowed
    if (key.data === "never") key.fileobj.accept();
    if (key.fileobj instanceof PollableListener) {
      accepted = key.fileobj.accept(); // narrowed: no cast
    }
  }
  assert(accepted !== null);
  using _accepted = accepted;
});

Deno.test("Selector.register() returns a key typed with the pollable passed in", () => {
  using sel = new Selector();
  using listener = listen();
  const key = sel.register(listener, EVENT_READ);
  assertType<Equal<typeof key.fileobj, PollableListener>>();
  assert(key.fileobj.addr !== null);
});

Deno.test("Selector<T, PollableConn> holds conns only and types fileobj as PollableConn", async () => {
  using sel = new DefaultSelector<undefined, PollableConn>();
  using listener = listen();
  using conn = PollableConn.connect(listener.addr as Deno.NetAddr);
  sel.register(conn, EVENT_WRITE);
  // @ts-expect-error: a listener is not a PollableConn
  assert(sel.getMap().get(listener) === undefined);
  for (const [key, mask] of await sel.select(5_000)) {
    assertType<Equal<typeof key.fileobj, PollableConn>>();
    if (mask & EVENT_WRITE) assert(key.fileobj.send("x") === 1);
  }
  sel.unregister(conn);
});

Deno.test("PollableListener.listen() and from() type addr by transport, as Deno.listen does: a TCP one's port needs no cast", async () => {
  using tcp = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
  assertType<Equal<typeof tcp.addr, Deno.NetAddr>>();
  assert(tcp.addr.port > 0);
  using wrapped = PollableListener.from(
    Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  assertType<Equal<typeof wrapped.addr, Deno.NetAddr>>();
  assert(wrapped.addr.port > 0);
  const dir = await Deno.makeTempDir();
  try {
    using unix = PollableListener.listen({
      transport: "unix",
      path: `${dir}/s.sock`,
    });
    assertType<Equal<typeof unix.addr, Deno.UnixAddr>>();
    // @ts-expect-error: a Unix socket's address has no port
    assertStrictEquals(unix.addr.port, undefined);
    assertStrictEquals(unix.addr.path, `${dir}/s.sock`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // Options of either transport: any address, as before.
  const listenAny = (options: PollableListenOptions) =>
    PollableListener.listen(options);
  using either = listenAny({ hostname: "127.0.0.1", port: 0 });
  assertType<Equal<typeof either.addr, Deno.Addr>>();
  assert(either.addr.transport === "tcp");
});
