// Configuration of the bubble_sync function, read from its environment.
//
// Supabase injects SUPABASE_URL, SUPABASE_DB_URL, SUPABASE_SERVICE_ROLE_KEY (legacy JWT, may be absent) and
// SUPABASE_SECRET_KEYS (JSON object of new sb_secret_ keys, may be absent); the BUBBLE_* variables are the
// function's own secrets, set by the deployment from the stack config (components/function_env.py), which
// checks each one's range first. Here: parsing, presence, and what the function itself depends on (a value
// it can work with, Bubble's bulk limit, the HTTP timeout fitting the lease); the defaults are the stack
// config's (settings.ts, generated). Errors name the variable, never its value.

import { MAX_REQUESTS_PER_ROW, SETTINGS } from "./settings.ts";

export { MAX_REQUESTS_PER_ROW };

/** A missing or invalid environment variable; `variable` names it, the message never contains its value. */
export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}

export type EnvReader = (name: string) => string | undefined;

/** Everything a run needs besides the caller's credentials. */
export interface Config {
  dbUrl: string;
  /** `https://<app>/api/1.1` or `https://<app>/version-test/api/1.1`, without a trailing slash. */
  bubbleBaseUrl: string;
  bubbleToken: string;
  dataType: string;
  externalKeyField: string;
  batchSize: number;
  concurrency: number;
  leaseSeconds: number;
  httpTimeoutMs: number;
  timeBudgetMs: number;
  /**
   * Rows one run claims at most: what fits in the CPU time a worker leaves an invocation (Supabase: 2 s per
   * worker, which takes no new request past half of it; the local host measures about 1.3 ms per row).
   */
  rowsPerRun: number;
  bulkCreate: boolean;
  rateLimitPerMinute: number;
  /** After a create whose outcome is unknown, how long the row waits before it is looked up again. */
  settleSeconds: number;
  /** The longest a bulk create call may take; the run's time budget and the lease may allow less. */
  bulkTimeoutMs: number;
  /** Whether a modify of a user carries its email and password (Bubble does not document that it may). */
  modifyUserCredentials: boolean;
}

/** Bubble's documented maximum of lines per bulk create call, and of rows per claim. */
export const MAX_BATCH = 1000;

function text(env: EnvReader, name: string, fallback?: string): string {
  const raw = env(name)?.trim();
  if (raw) return raw;
  if (fallback !== undefined) return fallback;
  throw new ConfigError(name, "is not set");
}

function integer(env: EnvReader, name: string, fallback: number, min: number, max: number): number {
  const raw = env(name)?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number from ${min} to ${max}`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be from ${min} to ${max}`);
  return value;
}

type NumberSetting = {
  [K in keyof typeof SETTINGS]: (typeof SETTINGS)[K] extends { least: number } ? K : never;
}[keyof typeof SETTINGS];

/** A whole-number setting: the stack config's default, at least the least value the function works with,
 * and at most `max` where the platform has a limit. */
function count(env: EnvReader, name: NumberSetting, max = Number.MAX_SAFE_INTEGER): number {
  const { default: fallback, least } = SETTINGS[name];
  return integer(env, name, fallback, least, max);
}

function boolean(env: EnvReader, name: "BUBBLE_BULK_CREATE" | "BUBBLE_MODIFY_USER_CREDENTIALS"): boolean {
  const fallback = SETTINGS[name].default;
  const raw = env(name)?.trim().toLowerCase();
  if (!raw) return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(name, "must be true or false");
}

function bubbleBaseUrl(env: EnvReader): string {
  const name = "BUBBLE_BASE_URL";
  const raw = text(env, name);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, "is not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ConfigError(name, "must be an http(s) URL");
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new ConfigError(
      name,
      "must not carry a query, fragment or credentials (the token has its own secret)",
    );
  }
  const path = url.pathname.replace(/\/+$/, "");
  if (!path.endsWith("/api/1.1")) {
    throw new ConfigError(name, "must end in /api/1.1 (live) or /version-test/api/1.1 (development)");
  }
  return `${url.origin}${path}`;
}

/** The credentials a caller may present: the legacy service role key and every new secret key. */
export function loadCallerKeys(env: EnvReader): string[] {
  const keys: string[] = [];
  const legacy = env("SUPABASE_SERVICE_ROLE_KEY")?.trim();
  if (legacy) keys.push(legacy);
  const raw = env("SUPABASE_SECRET_KEYS")?.trim();
  if (raw) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new ConfigError("SUPABASE_SECRET_KEYS", "is not valid JSON (expected an object of name: key)");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError("SUPABASE_SECRET_KEYS", "must be a JSON object of name: key");
    }
    for (const value of Object.values(parsed)) {
      if (typeof value === "string" && value.trim()) keys.push(value.trim());
    }
  }
  if (keys.length === 0) {
    throw new ConfigError(
      "SUPABASE_SERVICE_ROLE_KEY",
      "neither it nor SUPABASE_SECRET_KEYS holds a key, so no caller could be authenticated",
    );
  }
  return keys;
}

/** Reads and checks every setting; throws ConfigError for the first problem. */
export function loadConfig(env: EnvReader): Config {
  const dbUrl = text(env, "SUPABASE_DB_URL");
  if (!/^postgres(ql)?:\/\//.test(dbUrl)) {
    throw new ConfigError("SUPABASE_DB_URL", "must be a postgres:// or postgresql:// URL");
  }
  const dataType = text(env, "BUBBLE_DATA_TYPE", SETTINGS.BUBBLE_DATA_TYPE.default);
  // Bubble's type names in the Data API are lowercase with spaces removed; custom types may have dots.
  if (!/^[A-Za-z0-9_.-]+$/.test(dataType)) {
    throw new ConfigError(
      "BUBBLE_DATA_TYPE",
      "must be Bubble's API name of the type (letters, digits, _ . -)",
    );
  }
  const leaseSeconds = count(env, "BUBBLE_SYNC_LEASE_SECONDS");
  const httpTimeoutMs = count(env, "BUBBLE_SYNC_HTTP_TIMEOUT_MS");
  if (httpTimeoutMs * MAX_REQUESTS_PER_ROW >= leaseSeconds * 1000) {
    throw new ConfigError(
      "BUBBLE_SYNC_HTTP_TIMEOUT_MS",
      `must be shorter than the lease (BUBBLE_SYNC_LEASE_SECONDS) divided by ${MAX_REQUESTS_PER_ROW}, ` +
        `the most Bubble requests one row may need in a row`,
    );
  }
  return {
    dbUrl,
    bubbleBaseUrl: bubbleBaseUrl(env),
    bubbleToken: text(env, "BUBBLE_API_TOKEN"),
    dataType,
    externalKeyField: text(env, "BUBBLE_EXTERNAL_KEY_FIELD", SETTINGS.BUBBLE_EXTERNAL_KEY_FIELD.default),
    batchSize: count(env, "BUBBLE_SYNC_BATCH_SIZE", MAX_BATCH),
    concurrency: count(env, "BUBBLE_SYNC_CONCURRENCY"),
    leaseSeconds,
    httpTimeoutMs,
    // Not stack settings. 60 s: a worker takes no new request once half its 150 s (Free plan) has passed and
    // is stopped at 150 s, so an invocation may start with only 75 s left. 400 rows: at about 1.3 ms of CPU
    // each, with a fresh worker's first-run cost, well under the 1 s of CPU an invocation is sure to have.
    timeBudgetMs: integer(env, "BUBBLE_SYNC_TIME_BUDGET_MS", 60_000, 1, 3_600_000),
    rowsPerRun: integer(env, "BUBBLE_SYNC_ROWS_PER_RUN", 400, 1, 1_000_000),
    bulkCreate: boolean(env, "BUBBLE_BULK_CREATE"),
    rateLimitPerMinute: count(env, "BUBBLE_RATE_LIMIT_PER_MINUTE"),
    settleSeconds: count(env, "BUBBLE_SETTLE_SECONDS"),
    bulkTimeoutMs: count(env, "BUBBLE_BULK_TIMEOUT_SECONDS") * 1000,
    modifyUserCredentials: boolean(env, "BUBBLE_MODIFY_USER_CREDENTIALS"),
  };
}

/** Secret values that must never reach a log line, a response or the queue's error_message. */
export function secretsOf(env: EnvReader): string[] {
  const values: string[] = [];
  for (const name of ["BUBBLE_API_TOKEN", "SUPABASE_SERVICE_ROLE_KEY"]) {
    const value = env(name)?.trim();
    if (value) values.push(value);
  }
  try {
    values.push(...loadCallerKeys(env));
  } catch {
    // an unusable SUPABASE_SECRET_KEYS is reported elsewhere; its raw text is still a secret
    const raw = env("SUPABASE_SECRET_KEYS")?.trim();
    if (raw) values.push(raw);
  }
  const dbUrl = env("SUPABASE_DB_URL");
  if (dbUrl) {
    try {
      const password = decodeURIComponent(new URL(dbUrl).password);
      if (password) values.push(password);
    } catch {
      // not a URL: loadConfig reports it
    }
  }
  // Longest first, so a key that contains another is removed whole.
  return [...new Set(values)].filter((v) => v.length >= 4).sort((a, b) => b.length - a.length);
}

/** `text` with every secret value replaced by `[redacted]`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join("[redacted]");
  return out;
}
