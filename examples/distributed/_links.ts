/**
 * The links `distributed_crawl.ts --follow` puts back into the frontier: those
 * of an HTML page on the page's origin, found by the crawl CLI's extractor
 * (`examples/crawl/links.ts`: htmlparser2's tokenizer, so `<base href>`,
 * character references, comments and scripts are read as HTML reads them, in
 * time linear in the page), normalised as the CLI's frontier does.
 *
 * @module
 */
import { charsetOf, LinkExtractor, robotsNofollow } from "../crawl/links.ts";

/**
 * The distinct same-origin links of `html`, in page order, at most `limit`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { sameOriginLinks } from "./_links.ts";
 *
 * const html = `<a href="/b#top">b</a> <a href='c?x=1&amp;y=2'>c</a>
 *   <a href="/?p=1&#038;page=2">p</a>
 *   <a href="https://elsewhere.example/">x</a> <a href="mailto:a@b">m</a>`;
 * assertEquals(sameOriginLinks(html, "http://127.0.0.1:8000/a/"), [
 *   "http://127.0.0.1:8000/b",
 *   "http://127.0.0.1:8000/a/c?x=1&y=2",
 *   "http://127.0.0.1:8000/?p=1&page=2",
 * ]);
 * ```
 *
 * @param html The page: its text, or its bytes.
 * @param page The page's URL: links resolve against it (or its `<base href>`),
 *   and only its origin is kept.
 * @param limit The most links returned (default: all of them; a page's links
 *   cut short would never be seen again).
 * @param headers The response's header fields: with bytes, the page's
 *   encoding is found as a browser finds it (`charsetOf`); without, UTF-8.
 * @returns Absolute URLs, without fragment.
 */
export function sameOriginLinks(
  html: string | Uint8Array,
  page: string | URL,
  limit = Infinity,
  headers?: Headers,
): string[] {
  const origin = new URL(page).origin;
  const extractor = new LinkExtractor(page, {
    encoding: typeof html === "string"
      ? "utf-8"
      : charsetOf(headers ?? new Headers(), html),
  });
  const found = [...extractor.write(html), ...extractor.end()];
  // The page's own word (robots meta tag, X-Robots-Tag): no links.
  if (extractor.nofollow || robotsNofollow(headers?.get("x-robots-tag"))) {
    return [];
  }
  const links = new Set<string>();
  for (const link of found) {
    if (links.size >= limit) break;
    if (new URL(link).origin === origin) links.add(link);
  }
  return [...links];
}
