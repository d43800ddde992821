// bubble_sync: syncs rows of public.sync_queue to Bubble.io's Data API. Woken by pg_net (cron every minute,
// retries every five minutes, and on new rows); see handler.ts for what it answers and process.ts for a run.
// Deploy with verify_jwt = false: the function checks its callers itself (auth.ts).

import { handler } from "./handler.ts";

Deno.serve(handler);
