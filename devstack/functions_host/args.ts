/** The host's command line: the router's (`--functions-dir`, `--port`) or a worker's (`--worker <slug>`). */

export type Args =
  | { mode: "router"; functionsDir: string; port: number }
  | { mode: "worker"; functionsDir: string; slug: string; token: string };

export function usage(message: string): never {
  console.error(`functions_host: ${message}`);
  console.error("usage: functions_host.ts [--functions-dir DIR] [--port N]");
  Deno.exit(2);
}

function parsePort(raw: string): number {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) usage(`invalid port ${JSON.stringify(raw)}`);
  return port;
}

export function parseArgs(args: string[]): Args {
  const flags = new Set(["--functions-dir", "--port", "--worker", "--control-token"]);
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (!flags.has(flag)) usage(`unknown argument ${args[i]}`);
    const value = inline ?? args[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    values.set(flag, value);
  }
  const functionsDir = values.get("--functions-dir") ?? "supabase/functions";
  const slug = values.get("--worker");
  if (slug !== undefined) {
    const token = values.get("--control-token");
    if (token === undefined) usage("--worker needs --control-token");
    return { mode: "worker", functionsDir, slug, token };
  }
  const rawPort = values.get("--port") ?? Deno.env.get("FUNCTIONS_PORT") ?? "0";
  return { mode: "router", functionsDir, port: parsePort(rawPort) };
}
