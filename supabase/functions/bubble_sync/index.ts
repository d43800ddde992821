// Placeholder for the bubble_sync Edge Function. It only proves the function is deployed and
// reachable; the queue processing that posts signups to Bubble.io replaces it in issue 4.
// It deliberately has no imports so it boots anywhere Deno runs (hosted, or the local host).

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

// deno-lint-ignore require-await -- nothing to await yet; the real handler (issue 4) will await.
export async function handler(req: Request): Promise<Response> {
  // Every GET, whatever the sub-path, is the health check: that is all this placeholder serves.
  if (req.method === "GET") {
    return json(200, { status: "ok", function: "bubble_sync" });
  }
  return json(501, {
    error: "not_implemented",
    message: "queue processing arrives with the bubble_sync function (issue 4)",
  });
}

Deno.serve(handler);
