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
  const flag = /'(-[^' ]*)/.exec(error.message)?.[1];
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    return `unknown option ${flag ?? error.message}`;
  }
  if (error.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    return flag
      ? `option ${flag} needs a value`
      : error.message.split("\n")[0]!;
  }
  return error.message.split("\n")[0]!;
}
