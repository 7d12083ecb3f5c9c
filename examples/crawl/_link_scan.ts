/**
 * The fast paths of the crawl's link extractor (`links.ts`): htmlparser2's
 * parser reading the text between tags with `indexOf`, and links resolved as
 * strings where `URL` would give the same. Internal: for `links.ts`, and its
 * tests that check both against what they replace.
 *
 * @module
 */
import { Parser, Tokenizer } from "npm:htmlparser2@12.0.0";

/**
 * What {@linkcode LinkTokenizer} replaces in htmlparser2 12.0.0's `Tokenizer`
 * (private in its types): where it is in its piece of text, and the two
 * methods that step through text a character at a time.
 */
interface TokenizerInternals {
  buffer: string;
  index: number;
  offset: number;
  stateText(c: number): void;
  fastForwardTo(c: number): boolean;
}

const LT = 0x3c;

/**
 * htmlparser2's tokenizer, with the text between tags skipped by `indexOf`
 * where it stepped through it a character at a time to decode its character
 * references (a third of the extractor's time): text goes straight to the
 * next `<`, as the tokenizer does without `decodeEntities` (text is not read
 * here, only tags; a reference in text never holds a `<`, so the tags found
 * are the same). Each fast-forward (to the `>` after an end tag's name, a
 * comment's end, a script's `<`) is an `indexOf` too. Tags, attributes and
 * attribute values (references decoded) come out as before.
 */
export class LinkTokenizer extends Tokenizer {}
{
  const proto = LinkTokenizer.prototype as unknown as TokenizerInternals;
  const stateText = proto.stateText;
  proto.stateText = function (this: TokenizerInternals, c: number): void {
    if (c !== LT) {
      const at = this.buffer.indexOf("<", this.index - this.offset + 1);
      if (at < 0) {
        // At the piece's last character, as the tokenizer's fastForwardTo().
        this.index = this.buffer.length + this.offset - 1;
        return;
      }
      this.index = at + this.offset;
    }
    stateText.call(this, LT);
  };
  proto.fastForwardTo = function (
    this: TokenizerInternals,
    c: number,
  ): boolean {
    const at = this.buffer.indexOf(
      String.fromCharCode(c),
      this.index - this.offset + 1,
    );
    if (at < 0) {
      this.index = this.buffer.length + this.offset - 1;
      return false;
    }
    this.index = at + this.offset;
    return true;
  };
}

/**
 * htmlparser2's parser without the text it cut out of the page for a handler
 * that takes none (`ontext`). Give it {@linkcode LinkTokenizer} as its
 * `Tokenizer` option.
 */
export class LinkParser extends Parser {
  override ontext(_start: number, endIndex: number): void {
    this.endIndex = endIndex - 1;
    this.startIndex = endIndex;
  }
}

/** Characters a path keeps as they are, none that normalisation changes. */
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;
/** The same for a query ("'" is escaped in an http(s) query), with its "?". */
const PLAIN_QUERY = /^(?:\?[A-Za-z0-9\-._~!$&()*+,;=:@/?]*)?$/;
/** A "." or ".." segment, which the URL parser resolves. */
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:\/|$)/;
/** An http(s) URL's start whose host is a plain domain, kept as it is (lower-cased). */
const PLAIN_AUTHORITY = /^(https?):\/\/([A-Za-z0-9.-]+)(?=[/?]|$)/i;
/** A domain label the URL parser keeps as it is (lower-cased). */
const PLAIN_LABEL = /^[a-z0-9-]+$/;

/**
 * Whether the URL parser only lower-cases `host` (lower-cased here): labels
 * of letters, digits and hyphens, none empty, none an IDNA "xn--" one, the
 * last starting with a letter (a number there makes it an IPv4 address).
 */
function plainDomain(host: string): boolean {
  const labels = host.split(".");
  for (const label of labels) {
    if (!PLAIN_LABEL.test(label) || label.startsWith("xn--")) return false;
  }
  const first = labels[labels.length - 1]!.charCodeAt(0);
  return first >= 0x61 && first <= 0x7a;
}

/** What `normalizeUrl` (links.ts) may mend in a path or query. */
export const ESCAPES = /[%[\]|^{}`\\]/;

/**
 * A base URL that resolves the common links (`/path`, `page.html`,
 * `?query`, `http://host/path`) as strings, where they hold only characters
 * that the URL parser and the crawl's normalisation keep as they are, and no
 * `.` or `..` segment: what `normalizeLink(link, base)` gives, without the
 * URL parser (an op in Deno, a quarter of the extractor's time).
 */
export class LinkBase {
  /** "scheme://host[:port]", or `null` when no link resolves here. */
  readonly #origin: string | null = null;
  /** The base's path. */
  readonly #path: string = "";
  /** Its path up to its last "/". */
  readonly #dir: string = "";

  /** @param href A serialised URL (`URL.href`). */
  constructor(href: string) {
    const scheme = href.startsWith("http://")
      ? 7
      : href.startsWith("https://")
      ? 8
      : 0;
    if (scheme === 0) return;
    const path = href.indexOf("/", scheme);
    // Credentials (dropped from links by normalizeLink) go the slow way.
    if (path < 0 || href.lastIndexOf("@", path) >= 0) return;
    // The path ends at the first "?" or "#" (neither is raw in a path).
    let end = href.length;
    const query = href.indexOf("?", path);
    const fragment = href.indexOf("#", path);
    if (query >= 0) end = query;
    if (fragment >= 0 && fragment < end) end = fragment;
    const pathname = href.slice(path, end);
    if (ESCAPES.test(pathname)) return;
    this.#origin = href.slice(0, path);
    this.#path = pathname;
    this.#dir = pathname.slice(0, pathname.lastIndexOf("/") + 1);
  }

  /**
   * `link` resolved and normalised, as `normalizeLink(link, base)` gives it;
   * `undefined` when it is not one of the simple forms resolved here.
   */
  resolve(link: string): string | undefined {
    const origin = this.#origin;
    if (origin === null) return undefined;
    const hash = link.indexOf("#");
    const ref = hash < 0 ? link : link.slice(0, hash);
    const q = ref.indexOf("?");
    const path = q < 0 ? ref : ref.slice(0, q);
    const query = q < 0 ? "" : ref.slice(q);
    if (!PLAIN_QUERY.test(query)) return undefined;
    if (path === "") {
      // "" and "#x" are the base itself, with its query: not done here.
      return q < 0 ? undefined : origin + this.#path + query;
    }
    if (!PLAIN_PATH.test(path)) return undefined;
    if (path.charCodeAt(0) === 0x2f) {
      // "//host" is an authority.
      if (path.charCodeAt(1) === 0x2f || DOT_SEGMENT.test(path)) {
        return undefined;
      }
      return origin + path + query;
    }
    const colon = path.indexOf(":");
    if (colon >= 0) {
      const slash = path.indexOf("/");
      // "scheme:" before any "/": an absolute URL.
      if (slash < 0 || colon < slash) return this.#absolute(ref);
    }
    if (DOT_SEGMENT.test(path)) return undefined;
    return origin + this.#dir + path + query;
  }

  /** `ref` (no fragment) as an absolute http(s) URL on a plain domain. */
  #absolute(ref: string): string | undefined {
    const start = PLAIN_AUTHORITY.exec(ref);
    if (start === null) return undefined;
    const host = start[2]!.toLowerCase();
    if (!plainDomain(host)) return undefined;
    let rest = ref.slice(start[0].length);
    const q = rest.indexOf("?");
    let path = q < 0 ? rest : rest.slice(0, q);
    const query = q < 0 ? "" : rest.slice(q);
    if (path === "") path = "/";
    if (
      !PLAIN_QUERY.test(query) || !PLAIN_PATH.test(path) ||
      path.charCodeAt(1) === 0x2f || DOT_SEGMENT.test(path)
    ) return undefined;
    rest = path + query;
    return `${start[1]!.toLowerCase()}://${host}${rest}`;
  }
}
