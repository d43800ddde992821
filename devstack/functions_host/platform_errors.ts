/** The platform's error answers, JSON `{code, message}` as Supabase's edge runtime gives them. */

export const RESOURCE_LIMIT = {
  code: "WORKER_RESOURCE_LIMIT",
  message: "Function failed due to not having enough compute resources (please check logs)",
};
export const WORKER_ERROR = {
  code: "WORKER_ERROR",
  message: "Function exited due to an error (please check logs)",
};
export const BOOT_ERROR = { code: "BOOT_ERROR", message: "Function failed to start (please check logs)" };
export const NOT_FOUND = { code: "NOT_FOUND", message: "Requested function was not found" };

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
