/**
 * One robots.txt, parsed and asked (RFC 9309, read as Google's robotstxt reads
 * it where the RFC leaves room): groups, the rules that apply to a product
 * token, and the path form rules and URLs are compared in.
 *
 * @module
 */

interface Rule {
  /** The path pattern, in {@linkcode robotsPath} form. */
  pattern: string;
  allow: boolean;
  /** The pattern split at its `*`s (a final `$` left out). */
  pieces: string[];
  /** Whether it ends in `$`: the path must end where the pattern does. */
  anchored: boolean;
}

function compileRule(pattern: string, allow: boolean): Rule {
  const anchored = pattern.endsWith("$");
  // Only a final `$` anchors; another is the character, which a URL's path
  // holds as `%24` in robotsPath form.
  const pieces = (anchored ? pattern.slice(0, -1) : pattern)
    .replaceAll("$", "%24")
    .split("*");
  return { pattern, allow, pieces, anchored };
}

/** ASCII whitespace off both ends (not `trim()`'s: U+2028 or NBSP stay). */
function asciiTrim(text: string): string {
  return text.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, "");
}

interface Group {
  /** Product tokens, lower-case; `"*"` for any crawler. */
  agents: string[];
  rules: Rule[];
  /** The first `Crawl-delay` of the group, in seconds, if it parsed. */
  crawlDelay: number | undefined;
}

/**
 * A parsed robots.txt.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseRobotsTxt } from "./robots_txt.ts";
 *
 * const robots = parseRobotsTxt(
 *   "User-agent: mybot (+http://a.test/bot)\nSitemap: /s.xml\n" +
 *     "User-agent: other\nDisallow: /x[1]\nCrawl-delay: 2",
 * );
 * assertEquals(robots.isAllowed("/x[1]", "MyBot/1.0"), false);
 * assertEquals(robots.isAllowed("/x%5B1%5D", "mybot"), false);
 * assertEquals(robots.isAllowed("/x[1]", "thirdbot"), true);
 * assertEquals(robots.crawlDelay("mybot"), 2);
 * ```
 */
export interface RobotsTxt {
  /**
   * Whether `agent` may fetch `path`: the longest matching rule of its groups
   * wins, `Allow` on a tie; no matching rule allows.
   *
   * @param path A URL's path and query, as `URL.pathname + URL.search` give it.
   * @param agent The crawler's product token (what follows its leading
   *   `[A-Za-z_-]` characters is ignored); `"*"` for the groups of any crawler.
   */
  isAllowed(path: string, agent: string): boolean;
  /**
   * The `Crawl-delay` of `agent`'s groups, in seconds as written: it may be
   * huge, or `Infinity` ("Infinity", "1e999"); `undefined` when there is none
   * or it is no non-negative decimal number.
   */
  crawlDelay(agent: string): number | undefined;
}

/**
 * Parses a robots.txt. Lines are `key: value` with `#` comments; keys are
 * case-insensitive. A group is a run of `User-agent` lines and the rules after
 * them: only an `Allow` or `Disallow` line ends the run of agents, so a
 * `Sitemap`, `Crawl-delay` or unknown line between two `User-agent` lines does
 * not split the group (RFC 9309 §2.2.4: other records must not interfere; as
 * Google does). Rules before any `User-agent` line are ignored.
 *
 * @param text The file, decoded.
 * @returns Its groups, ready to be asked.
 */
export function parseRobotsTxt(text: string): RobotsTxt {
  const groups: Group[] = [];
  let current: Group | null = null;
  let inAgents = false;
  // A BOM that decoding left (a string given as is) would spoil the first key.
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  for (const raw of body.split(/\r\n|\r|\n/)) {
    const hash = raw.indexOf("#");
    const line = asciiTrim(hash < 0 ? raw : raw.slice(0, hash));
    let colon = line.indexOf(":");
    let valueStart = colon + 1;
    if (colon < 0) {
      // A forgotten colon: whitespace stands in for it when the line is exactly
      // two words (Google's reading), so `disallow /` still forbids.
      const space = /[ \t]+/.exec(line);
      if (
        space === null ||
        /[ \t]/.test(line.slice(space.index + space[0].length))
      ) {
        continue;
      }
      colon = space.index;
      valueStart = colon + space[0].length;
    }
    const key = keyOf(asciiTrim(line.slice(0, colon)).toLowerCase());
    const value = asciiTrim(line.slice(valueStart));
    switch (key) {
      case "user-agent": {
        if (!inAgents || current === null) {
          current = { agents: [], rules: [], crawlDelay: undefined };
          groups.push(current);
          inAgents = true;
        }
        const agent = agentToken(value);
        if (agent !== "") current.agents.push(agent);
        break;
      }
      case "allow":
      case "disallow":
        inAgents = false;
        // An empty Disallow allows everything: no rule at all.
        if (current !== null && value !== "") {
          current.rules.push(compileRule(robotsPath(value), key === "allow"));
          // Google's too: allowing a directory's index page allows the directory.
          const slash = value.lastIndexOf("/");
          if (key === "allow" && value.startsWith("/index.htm", slash)) {
            current.rules.push(
              compileRule(robotsPath(value.slice(0, slash + 1) + "$"), true),
            );
          }
        }
        break;
      case "crawl-delay":
        if (current !== null && current.crawlDelay === undefined) {
          current.crawlDelay = seconds(value);
        }
        break;
    }
  }
  return {
    isAllowed(path, agent) {
      const target = robotsPath(path, true);
      let best: Rule | null = null;
      for (const group of groupsOf(groups, agent)) {
        for (const rule of group.rules) {
          if (
            (best === null || rule.pattern.length > best.pattern.length ||
              (rule.pattern.length === best.pattern.length && rule.allow)) &&
            matches(rule, target)
          ) {
            best = rule;
          }
        }
      }
      return best === null || best.allow;
    },
    crawlDelay(agent) {
      for (const group of groupsOf(groups, agent)) {
        if (group.crawlDelay !== undefined) return group.crawlDelay;
      }
      return undefined;
    },
  };
}

/**
 * A line's key, lower-case, as Google's robotstxt reads keys: by their start
 * (`Disallowed` is `disallow`, `User-agents` is `user-agent`), with the
 * misspellings of `Disallow` and `User-agent` it knows. Erring that way
 * keeps out what a site evidently meant to forbid.
 */
function keyOf(key: string): string {
  if (/^(user-agent|useragent|user agent)/.test(key)) return "user-agent";
  if (/^(disallow|dissallow|dissalow|disalow|diasllow|disallaw)/.test(key)) {
    return "disallow";
  }
  if (key.startsWith("allow")) return "allow";
  return key;
}

/**
 * The product token a `User-agent` value or a crawler's name stands for,
 * lower-case: `"*"` (alone, or before whitespace), or its leading `[A-Za-z_-]`
 * characters, as Google's robotstxt reads it (`MyBot/1.0 (+http://...)` is
 * `mybot`); `""` when it has none (`*bot` names no crawler).
 */
export function agentToken(value: string): string {
  if (/^\*(?:\s|$)/.test(value)) return "*";
  return /^[A-Za-z_-]*/.exec(value)![0].toLowerCase();
}

/**
 * RFC 9309 §2.2.1: the groups naming the agent, combined; else those of `*`.
 */
function groupsOf(groups: Group[], agent: string): Group[] {
  const token = agentToken(agent) || "*";
  const named = groups.filter((g) => g.agents.includes(token));
  return named.length > 0
    ? named
    : groups.filter((g) => g.agents.includes("*"));
}

function seconds(value: string): number | undefined {
  if (/^\+?inf(inity)?$/i.test(value)) return Infinity;
  return /^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(value)
    ? Number(value)
    : undefined;
}

/** Characters left literal in one URL component and encoded in another. */
const EITHER_FORM = new Set(["'", "[", "]", "^", "`", "{", "}", "|", "\\"]);
const encoder = new TextEncoder();

/**
 * The one form a rule's path and a URL's path are compared in. RFC 9309 §2.2.2
 * compares octets with percent-encoded unreserved characters decoded (`%7E` is
 * `~`), and Google escapes only a rule's bytes >= 0x80, so a rule written with
 * `[`, `|` or `^` means those characters. But the WHATWG URL parser leaves
 * `[ ] | ^ '` literal in a path and encodes `'` in a query, leaves `{ } \``
 * literal in a query and encodes them in a path: a site's own links reach us
 * in either form. So unreserved characters and those are taken literally,
 * whichever form they came in; other escapes keep their meaning with
 * upper-case hex (`%2F` is no `/`), and what a URL always encodes (controls,
 * space, `" < >`, non-ASCII as UTF-8) is encoded.
 *
 * A rule's `*` and `$` are its wildcards, and `%2A` and `%24` the characters
 * (RFC 9309 §2.2.3): so a URL's own `*` and `$` (left literal by the URL
 * parser) are encoded.
 *
 * @param path A rule's pattern, or a URL's path and query.
 * @param url Whether `path` is a URL's (its `*` and `$` are characters).
 * @returns The path in that form.
 */
export function robotsPath(path: string, url = false): string {
  let out = "";
  for (let i = 0; i < path.length;) {
    const escape = /^%[0-9A-Fa-f]{2}/.exec(path.slice(i, i + 3))?.[0];
    if (escape !== undefined) {
      const c = String.fromCharCode(parseInt(escape.slice(1), 16));
      out += /[A-Za-z0-9\-._~]/.test(c) || EITHER_FORM.has(c)
        ? c
        : escape.toUpperCase();
      i += 3;
      continue;
    }
    const c = String.fromCodePoint(path.codePointAt(i)!);
    i += c.length;
    const code = c.codePointAt(0)!;
    if (
      code > 0x20 && code < 0x7f && !'"<>'.includes(c) &&
      !(url && (c === "*" || c === "$"))
    ) {
      out += c;
      continue;
    }
    for (const byte of encoder.encode(c)) {
      out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
    }
  }
  return out;
}

/**
 * Whether `rule` matches a prefix of `path`: `*` is any run of characters, a
 * final `$` ends the path. Each piece between `*`s is found at its earliest
 * place after the last (leftmost matching is exact for `*` alone), so a check
 * costs one pass over the path, however many `*`s (matching every split
 * made a rule like `/*a*a*a*a*b` take seconds on a long path).
 */
function matches(rule: Rule, path: string): boolean {
  const { pieces, anchored } = rule;
  const first = pieces[0]!;
  if (!path.startsWith(first)) return false;
  if (pieces.length === 1) return !anchored || path.length === first.length;
  let at = first.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const found = path.indexOf(pieces[i]!, at);
    if (found < 0) return false;
    at = found + pieces[i]!.length;
  }
  const last = pieces[pieces.length - 1]!;
  return anchored
    ? path.length - last.length >= at && path.endsWith(last)
    : path.indexOf(last, at) >= 0;
}
