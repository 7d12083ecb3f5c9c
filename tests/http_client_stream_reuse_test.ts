import { assertEquals } from "@std/assert";
import { HttpClient } from "../mod.ts";
import { drive, recordingServer } from "./_client_util.ts";

// A ReadableStream's producer may reuse its chunk once the reader has it (a
// pull source filling one buffer, as file and socket readers do): the client
// sends what each chunk held when it was read. (With highWaterMark 0 the
// stream pulls only for a read, so the buffer is refilled only once the reader
// asked for the next chunk.) This takes the Content-Length
// path of the body stream (the chunked path frames each chunk into a new array).
Deno.test("HttpClient sends a Content-Length body stream whose source reuses one buffer as the bytes each chunk held", async () => {
  await using server = recordingServer();
  const size = 16_384;
  const count = 256; // 4 MiB: more than the kernel takes at once, so chunks queue
  const buffer = new Uint8Array(size);
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled === count) return controller.close();
      buffer.fill(65 + (pulled++ % 26)); // "AAAA...", then "BBBB...", ...
      controller.enqueue(buffer);
    },
  }, { highWaterMark: 0 }); // pulled only when read: the reader has the last chunk

  const client = new HttpClient(server.url("/up"), {
    method: "PUT",
    headers: { "Content-Length": String(size * count) },
    body,
  });
  await drive(client);
  assertEquals(client.state, "done", String(client.error));
  const text = server.requests[0]!.text;
  const sent = text.slice(text.indexOf("\r\n\r\n") + 4);
  let expected = "";
  for (let i = 0; i < count; i++) {
    expected += String.fromCharCode(65 + (i % 26)).repeat(size);
  }
  assertEquals(sent.length, expected.length);
  assertEquals(
    sent === expected,
    true,
    "some chunk was sent with another chunk's bytes",
  );
});
