// Generated from the stack config keys (components/config.py KEYS) by
// `python -m components function-settings`; do not edit. tests/test_function_env.py fails when it
// differs from what that command prints.

/** Each setting: its stack config key, the default the stack config gives it, and for a number
 * the least value the function can work with (deploys check the stack config's narrower range). */
export const SETTINGS = {
  BUBBLE_BASE_URL: { key: "bubbleBaseUrl" },
  BUBBLE_API_TOKEN: { key: "bubbleApiToken" },
  BUBBLE_DATA_TYPE: { key: "bubbleDataType", default: "user" },
  BUBBLE_EXTERNAL_KEY_FIELD: { key: "bubbleExternalKeyField", default: "supabase_id" },
  BUBBLE_BULK_CREATE: { key: "bubbleBulkCreate", default: false },
  BUBBLE_BULK_TIMEOUT_SECONDS: { key: "bubbleBulkTimeoutSeconds", default: 240, least: 1 },
  BUBBLE_MODIFY_USER_CREDENTIALS: { key: "bubbleModifyUserCredentials", default: false },
  BUBBLE_SETTLE_SECONDS: { key: "bubbleSettleSeconds", default: 300, least: 0 },
  BUBBLE_SYNC_VERIFY_SAMPLE: { key: "verifySample", default: 100, least: 1 },
  BUBBLE_SYNC_BATCH_SIZE: { key: "batchSize", default: 50, least: 1 },
  BUBBLE_SYNC_CONCURRENCY: { key: "concurrency", default: 0, least: 0 },
  BUBBLE_RATE_LIMIT_PER_MINUTE: { key: "bubbleRateLimitPerMinute", default: 1000, least: 0 },
  BUBBLE_SYNC_LEASE_SECONDS: { key: "leaseSeconds", default: 180, least: 1 },
  BUBBLE_SYNC_HTTP_TIMEOUT_MS: { key: "httpTimeoutMs", default: 5000, least: 1 },
} as const;

/**
 * The longest chain of Bubble requests one row can need, one after the other: search by key (a
 * retried create), create, search by email (the email is already used), modify (link that user).
 * A row is started only while this many timeouts still fit in its lease, and the HTTP timeout must
 * fit this often in a lease.
 */
export const MAX_REQUESTS_PER_ROW = 4;
