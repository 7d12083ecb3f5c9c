/**
 * `text` with what looks like a URL's password as `***`, for a message about
 * text that did not parse as a URL (so `URL` cannot find the password).
 *
 * @param text What was given as a URL.
 * @returns It, its password hidden.
 */
export function hideUrlPassword(text: string): string {
  // As a URL parser reads it: the userinfo ends at the last "@" and starts after
  // the scheme's slashes (of either kind), or at the start with no scheme, as
  // `user:pw@host:port`; the password runs from its first ":".
  const start = /^[a-z][a-z\d+.-]*:[/\\]+/i.exec(text)?.[0].length ?? 0;
  const at = text.lastIndexOf("@");
  const colon = text.indexOf(":", start);
  if (at < start || colon < 0 || colon > at) return text;
  return `${text.slice(0, colon + 1)}***${text.slice(at)}`;
}

/**
 * The one-line usage message for an error thrown by `node:util`'s `parseArgs`:
 * "unknown option --x", "option --x needs a value", or the first line of its
 * message.
 *
 * @param e What `parseArgs` threw.
 * @returns The message, without a trailing newline.
 */
export function argsErrorMessage(e: unknown): string {
  const error = e as Error & { code?: string };
  // "Option '-c, --concurrency <value>' ...": the flag as it was typed first.
  const flag = /'(-[^' ,]*)/.exec(error.message)?.[1];
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    return `unknown option ${flag ?? error.message}`;
  }
  if (error.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    if (!flag) return error.message.split("\n")[0]!;
    // `--delay -5`: a value that starts with "-" reads as another option.
    return error.message.includes("ambiguous")
      ? `option ${flag} takes a value starting with "-" only as ${flag}=VALUE`
      : `option ${flag} needs a value`;
  }
  return error.message.split("\n")[0]!;
}

/**
 * Prints `line` on stdout; stdout gone (a full disk, a closed pipe) ends the
 * program with one line on stderr and exit code 1, not a stack trace.
 *
 * @param program The program's name, for the message.
 * @param line What to print.
 */
export function printOrExit(program: string, line: string): void {
  try {
    console.log(line);
  } catch (e) {
    console.error(
      `${program}: cannot write to stdout: ${
        e instanceof Error ? e.message : e
      }`,
    );
    Deno.exit(1);
  }
}
