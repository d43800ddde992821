// Who may call the function. It is deployed with verify_jwt off (the new sb_secret_ keys are not JWTs, so
// the platform's check would turn them away), which makes this the only gate.

const encoder = new TextEncoder();

/**
 * The credentials a caller presents: `Authorization: Bearer <key>` (what pg_net sends) and the `apikey` header
 * (where Supabase's docs put the new keys; supabase-js sends both, the bearer possibly a user's JWT).
 */
export function presentedCredentials(headers: Headers): string[] {
  const found: string[] = [];
  const bearer = /^bearer\s+(\S+)\s*$/i.exec(headers.get("authorization") ?? "");
  if (bearer) found.push(bearer[1]);
  const apikey = headers.get("apikey")?.trim();
  if (apikey) found.push(apikey);
  return found;
}

async function digest(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(value)));
}

/**
 * Whether `a` equals `b`, in time that depends on neither: both are hashed to 32 bytes first (so their
 * lengths leak nothing), then every byte is compared without stopping at the first difference.
 */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([digest(a), digest(b)]);
  let difference = 0;
  for (let i = 0; i < x.length; i++) difference |= x[i] ^ y[i];
  return difference === 0;
}

/**
 * Whether the request presents one of `keys`. Every pair is compared, so the timing does not tell which
 * credential or key matched.
 */
export async function isAuthorized(headers: Headers, keys: readonly string[]): Promise<boolean> {
  let matched = false;
  for (const credential of presentedCredentials(headers)) {
    for (const key of keys) {
      if (await constantTimeEqual(credential, key)) matched = true;
    }
  }
  return matched;
}
