// Configuration of the bubble_sync function, read from its environment.
//
// Supabase injects SUPABASE_URL, SUPABASE_DB_URL, SUPABASE_SERVICE_ROLE_KEY (legacy JWT, may be absent) and
// SUPABASE_SECRET_KEYS (JSON object of new sb_secret_ keys, may be absent); the BUBBLE_* variables are the
// function's own secrets, set by the deployment from the stack config (components/function_env.py), which
// checks each one's range first. Here: parsing, presence, and what the function itself depends on (a value
// it can work with, Bubble's bulk limit, the HTTP timeout fitting the lease); the defaults are the stack
// config's (settings.ts, generated). Errors name the variable, never its value. BUBBLE_SYNC_MAPPINGS, the
// stack's mappings (components/mappings.py, mappings_json), is checked here for what the function relies on.

import type { FieldMapping, Mapping, OnDelete } from "./mapping.ts";
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
  /** The stack's mappings (BUBBLE_SYNC_MAPPINGS); none: every row goes to dataType as queued. */
  mappings: Mapping[];
  /** Records of each mapping the action `verify` checks against Bubble (verify.ts). */
  verifySample: number;
}

/** The most records of a mapping one verification checks (the stack config's range). */
export const MAX_VERIFY_SAMPLE = 10_000;

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

/** Bubble's type names in the Data API are lowercase with spaces removed; custom types may have dots. */
const DATA_TYPE = /^[A-Za-z0-9_.-]+$/;
const MAPPINGS = "BUBBLE_SYNC_MAPPINGS";

/**
 * BUBBLE_SYNC_MAPPINGS: absent, empty or `[]` for none, else a JSON array of Mapping.definition() objects. The
 * stack validated them at preview; here, what the function relies on: the shape, one mapping per table, and
 * each reference naming a mapping of the list (its refTable, when given, that mapping's table). Keys the
 * function does not use are not checked. A problem names its place (`[1].fields[0].ref`), never a value.
 */
function mappings(env: EnvReader): Mapping[] {
  const raw = env(MAPPINGS)?.trim();
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(MAPPINGS, "is not valid JSON (expected a JSON array of mappings)");
  }
  if (!Array.isArray(parsed)) throw new ConfigError(MAPPINGS, "must be a JSON array of mappings");
  const list = parsed.map((entry, i) => mappingAt(entry, `[${i}]`));
  const names = new Map<string, number>();
  const tables = new Map<string, number>();
  list.forEach((mapping, i) => {
    for (
      const [seen, key, value] of [[names, "name", mapping.name], [tables, "table", mapping.table]] as const
    ) {
      const first = seen.get(value);
      if (first !== undefined) {
        throw new ConfigError(
          MAPPINGS,
          `[${i}].${key}: the same as [${first}].${key} (each mapping has its own ${key})`,
        );
      }
      seen.set(value, i);
    }
  });
  list.forEach((mapping, i) =>
    mapping.fields.forEach((field, j) => {
      if (field.ref === null) return;
      const at = `[${i}].fields[${j}]`;
      const named = names.get(field.ref);
      if (named === undefined) {
        throw new ConfigError(MAPPINGS, `${at}.ref: no mapping of the list has that name`);
      }
      const table = list[named].table;
      if (field.refTable !== null && field.refTable !== table) {
        throw new ConfigError(
          MAPPINGS,
          `${at}.refTable: not the table of the mapping its ref names ([${named}])`,
        );
      }
      field.refTable = table;
    })
  );
  return list;
}

function problem(at: string, message: string): ConfigError {
  return new ConfigError(MAPPINGS, `${at}: ${message}`);
}

function objectAt(value: unknown, at: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw problem(at, "must be an object");
  }
  return value as Record<string, unknown>;
}

function nameAt(entry: Record<string, unknown>, key: string, at: string): string {
  const value = entry[key];
  if (typeof value !== "string" || !value.trim()) throw problem(`${at}.${key}`, "must be a non-empty string");
  return value;
}

function optionalNameAt(entry: Record<string, unknown>, key: string, at: string): string | null {
  return entry[key] === undefined || entry[key] === null ? null : nameAt(entry, key, at);
}

function mappingAt(value: unknown, at: string): Mapping {
  const entry = objectAt(value, at);
  const dataType = nameAt(entry, "dataType", at);
  if (!DATA_TYPE.test(dataType)) {
    throw problem(`${at}.dataType`, "must be Bubble's API name of the type (letters, digits, _ . -)");
  }
  const keyField = nameAt(entry, "keyField", at);
  if (!Array.isArray(entry.fields) || entry.fields.length === 0) {
    throw problem(`${at}.fields`, "must be a non-empty array");
  }
  const fields = entry.fields.map((item, j): FieldMapping => {
    const field = objectAt(item, `${at}.fields[${j}]`);
    return {
      column: nameAt(field, "column", `${at}.fields[${j}]`),
      field: nameAt(field, "field", `${at}.fields[${j}]`),
      ref: optionalNameAt(field, "ref", `${at}.fields[${j}]`),
      refTable: optionalNameAt(field, "refTable", `${at}.fields[${j}]`),
    };
  });
  const columns = new Map<string, number>();
  const targets = new Map<string, number>([[keyField, -1]]);
  fields.forEach(({ column, field }, j) => {
    if (columns.has(column)) {
      throw problem(`${at}.fields[${j}].column`, `the same as fields[${columns.get(column)}]`);
    }
    const other = targets.get(field);
    if (other !== undefined) {
      throw problem(`${at}.fields[${j}].field`, other < 0 ? "the keyField" : `the same as fields[${other}]`);
    }
    columns.set(column, j);
    targets.set(field, j);
  });
  const where = entry.where;
  if (where !== undefined && where !== null && typeof where !== "string") {
    throw problem(`${at}.where`, "must be a string or null");
  }
  const operations = entry.operations ?? ["insert", "update"];
  if (
    !Array.isArray(operations) ||
    !operations.every((op) => op === "insert" || op === "update" || op === "delete")
  ) {
    throw problem(`${at}.operations`, "must be an array of insert, update and delete");
  }
  return {
    name: nameAt(entry, "name", at),
    schema: optionalNameAt(entry, "schema", at),
    sourceTable: optionalNameAt(entry, "sourceTable", at),
    table: nameAt(entry, "table", at),
    key: nameAt(entry, "key", at),
    dataType,
    keyField,
    fields,
    where: typeof where === "string" ? where : null,
    operations,
    onDelete: onDeleteAt(entry.onDelete, `${at}.onDelete`),
  };
}

function onDeleteAt(value: unknown, at: string): OnDelete {
  if (value === undefined || value === null) return { action: "delete" };
  const onDelete = objectAt(value, at);
  switch (onDelete.action) {
    case "delete":
    case "ignore":
      return { action: onDelete.action };
    case "set":
      return { action: "set", fields: { ...objectAt(onDelete.fields, `${at}.fields`) } };
    default:
      throw problem(`${at}.action`, "must be delete, ignore or set");
  }
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
  if (!DATA_TYPE.test(dataType)) {
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
    mappings: mappings(env),
    verifySample: count(env, "BUBBLE_SYNC_VERIFY_SAMPLE", MAX_VERIFY_SAMPLE),
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
