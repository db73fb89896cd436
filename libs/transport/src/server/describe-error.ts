/** What a handler threw, for a log line: an Error's message, else the value as JSON (or as a string when it is not JSON). */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}
