// Helpers the deno test files share, over what the fakes of fakes.ts recorded: Bubble's requests by route and
// body, and the most creates in flight at once.

import type { Setup } from "./fakes.ts";

/** The path of the Data API's things, as the fake Bubble sees requests for them. */
export const OBJ = "/version-test/api/1.1/obj";

/** Each request as `METHOD <path after /obj/>`. */
export function routes(s: Setup): string[] {
  return s.bubble.requests.map((r) => `${r.method} ${r.path.slice(OBJ.length + 1)}`);
}

/** The JSON body of the `i`th request Bubble received. */
export function bodyOf(s: Setup, i: number): Record<string, unknown> {
  return JSON.parse(s.bubble.requests[i].body);
}

/** Creates take 5 ms at the fake Bubble; `most` is the most that were in flight at once. */
export function countCreatesInFlight(s: Setup): { most: number } {
  const counter = { most: 0 };
  let inFlight = 0;
  s.bubble.fault("POST", async () => {
    counter.most = Math.max(counter.most, ++inFlight);
    await new Promise((resolve) => setTimeout(resolve, 5));
    inFlight--;
    return undefined;
  });
  return counter;
}
