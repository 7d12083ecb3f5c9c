import { assertEquals } from "@std/assert";
import { redactUrl } from "../client/_redact.ts";

const parse = (input: string) => {
  try {
    return new URL(input);
  } catch {
    return null;
  }
};

Deno.test("redactUrl() replaces only the password, keeping the input as given", () => {
  for (
    const [input, shown] of [
      ["http://user:secret@a.test/x", "http://user:***@a.test/x"],
      ["HTTP://user:se:cr@et@a.test", "HTTP://user:***@a.test"],
      ["http://user@a.test/p?q=user:pw@x", "http://user@a.test/p?q=user:pw@x"],
      ["http://a.test:8080/", "http://a.test:8080/"],
      ["http://:pw@a.test/", "http://:***@a.test/"],
      ["http:\\\\u:pw@a.test/", "http:\\\\u:***@a.test/"],
      ["not a url", "not a url"],
    ]
  ) assertEquals(redactUrl(input!, parse(input!)), shown, input);
});

Deno.test("redactUrl() falls back to the parsed URL when the input's form is unusual", () => {
  // Leading C0 controls are stripped by the URL parser, not by the pattern.
  const input = "\x01http://u:pw@a.test/";
  assertEquals(redactUrl(input, parse(input)), "http://u:***@a.test/");
  const url = new URL("http://u:pw@a.test/");
  assertEquals(redactUrl(url, url), "http://u:***@a.test/");
  assertEquals(url.password, "pw", "the caller's URL is not changed");
});
