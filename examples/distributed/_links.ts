/**
 * The links `distributed_crawl.ts --follow` puts back into the frontier: the
 * `href` of each `<a>` of an HTML page, resolved against the page's URL, kept when
 * on the page's origin, without their `#fragment`.
 *
 * A scanner, not an HTML parser: it does not know `<base href>`, comments or
 * scripts, which is fine for an example whose frontier deduplicates every URL.
 *
 * @module
 */

const ANCHOR_HREF =
  /<a\b[^>]*?\shref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>`]+))/gi;
const ENTITIES: Record<string, string> = {
  "&amp;": "&",
  "&quot;": '"',
  "&#39;": "'",
  "&lt;": "<",
  "&gt;": ">",
};

/**
 * The distinct same-origin links of `html`, in page order, at most `limit`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { sameOriginLinks } from "./_links.ts";
 *
 * const html = `<a href="/b#top">b</a> <a href='c?x=1&amp;y=2'>c</a>
 *   <a href="https://elsewhere.example/">x</a> <a href="mailto:a@b">m</a>`;
 * assertEquals(sameOriginLinks(html, "http://127.0.0.1:8000/a/"), [
 *   "http://127.0.0.1:8000/b",
 *   "http://127.0.0.1:8000/a/c?x=1&y=2",
 * ]);
 * ```
 *
 * @param html The page's text.
 * @param page The page's URL: links resolve against it, and only its origin is kept.
 * @param limit The most links returned (default: all of them; a page's links
 *   cut short would never be seen again).
 * @returns Absolute URLs (`URL.href`), without fragment.
 */
export function sameOriginLinks(
  html: string,
  page: string | URL,
  limit = Infinity,
): string[] {
  const base = new URL(page);
  const links = new Set<string>();
  for (const match of html.matchAll(ANCHOR_HREF)) {
    const raw = (match[1] ?? match[2] ?? match[3] ?? "")
      .replace(/&(?:amp|quot|#39|lt|gt);/g, (entity) => ENTITIES[entity]!)
      .trim();
    let url: URL;
    try {
      url = new URL(raw, base);
    } catch {
      continue;
    }
    if (url.origin !== base.origin) continue;
    url.hash = "";
    links.add(url.href);
    if (links.size >= limit) break;
  }
  return [...links];
}
