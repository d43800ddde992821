// How the sync reads what Bubble answers: its error bodies and Retry-After, the exceptions of a request that
// got no answer, a bulk call's lines, and a user's email in a thing. The client (bubble.ts) turns them into
// failures.

/** The most characters of a failure's message that are kept. */
const MAX_MESSAGE_CHARS = 500;

/** Seconds from a Retry-After header (delay-seconds or an HTTP date); null when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null || value.trim() === "") return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - nowMs) / 1000));
}

/** A message on one line, cut at MAX_MESSAGE_CHARS. */
export function clip(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length <= MAX_MESSAGE_CHARS ? flat : `${flat.slice(0, MAX_MESSAGE_CHARS)}…`;
}

/**
 * Bubble's error envelope `{"statusCode", "body": {"status", "message"}}` (or the same fields at the top), or
 * its 401 body `{"error_class", "args", "message": null, "translation"}`.
 */
export function describeError(status: number, bodyText: string): { code: string | null; message: string } {
  let code: string | null = null;
  let message: string | null = null;
  try {
    const parsed = JSON.parse(bodyText) as Record<string, unknown>;
    const body = (typeof parsed.body === "object" && parsed.body !== null ? parsed.body : parsed) as Record<
      string,
      unknown
    >;
    if (typeof body.status === "string") code = body.status;
    if (typeof body.message === "string") message = body.message;
    else if (typeof body.translation === "string") message = body.translation;
    if (message !== null && code === null && typeof body.error_class === "string") {
      message = `${body.error_class}: ${message}`;
    }
  } catch {
    // not JSON: use the text itself
  }
  const detail = message ?? (bodyText.trim() || "(no body)");
  return { code, message: clip(`Bubble answered ${status}${code ? ` ${code}` : ""}: ${detail}`) };
}

/** An exception's message with its cause's (Deno's fetch says only "fetch failed", the cause says why). */
export function describeException(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? error.cause.message : null;
  return cause && cause !== error.message ? `${error.message} (${cause})` : error.message;
}

/** Whether a request was given up on by its timeout (its signal aborted it). */
export function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError");
}

/**
 * A Bubble user's email as a GET or search returns it: under `authentication.email.email` (manual; captured
 * responses), or a plain `email` field (a data type of the app's own); null when it carries none.
 */
export function emailOf(thing: Record<string, unknown>): string | null {
  const authentication = thing.authentication as { email?: { email?: unknown } } | undefined;
  const builtIn = authentication?.email?.email;
  if (typeof builtIn === "string") return builtIn;
  return typeof thing.email === "string" ? thing.email : null;
}

/** The message of a lone `{"status": "error"}` line, or null when the line is anything else. */
export function wholeCallError(line: string): string | null {
  try {
    const parsed = JSON.parse(line) as { status?: unknown; message?: unknown };
    return parsed.status === "error" ? String(parsed.message ?? "(no message)") : null;
  } catch {
    return null;
  }
}
