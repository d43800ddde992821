/** The per-worker limits (EDGE_CPU_LIMIT_MS, EDGE_WALL_CLOCK_LIMIT_MS), read from the router's environment. */

import { usage } from "./args.ts";

const DEFAULT_CPU_LIMIT_MS = 2_000;
const DEFAULT_WALL_CLOCK_LIMIT_MS = 150_000;

/** The host's own settings: functions do not see them. */
export const HOST_ENV_NAMES = ["EDGE_CPU_LIMIT_MS", "EDGE_WALL_CLOCK_LIMIT_MS", "FUNCTIONS_PORT"];

export interface Limits {
  cpuMs: number;
  wallClockMs: number;
}

export function limitsFromEnv(): Limits {
  return {
    cpuMs: positiveIntegerEnv("EDGE_CPU_LIMIT_MS", DEFAULT_CPU_LIMIT_MS),
    wallClockMs: positiveIntegerEnv("EDGE_WALL_CLOCK_LIMIT_MS", DEFAULT_WALL_CLOCK_LIMIT_MS),
  };
}

function positiveIntegerEnv(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) usage(`${name} must be a positive integer`);
  return value;
}
