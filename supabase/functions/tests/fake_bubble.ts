// FakeBubble, the Bubble of the bubble_sync tests: a fake `fetch` holding things in memory by data type,
// recording every request, with ways to make Bubble answer otherwise (faults, errors, answers that never come).

import type { Fetch } from "../bubble_sync/bubble.ts";
import { assert } from "./assertions.ts";

export interface SeenRequest {
  method: string;
  path: string;
  constraints: unknown;
  authorization: string | null;
  contentType: string | null;
  body: string;
  /** A search's `cursor` (where its page starts), null when it has none. */
  cursor: number | null;
  /** Whether it came through fetchCreate (the no-pool client in production). */
  viaCreateFetch: boolean;
}

export type Override = (
  request: SeenRequest,
  signal: AbortSignal | undefined,
) => Promise<Response | undefined> | Response | undefined;

export const BASE = "https://app.example.com/version-test/api/1.1";
export const TOKEN = "bubble-token-0123456789abcdef0123";

export function bubbleError(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
) {
  return new Response(JSON.stringify({ statusCode: status, body: { status: code, message } }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export class FakeBubble {
  things = new Map<string, Record<string, unknown>>();
  /** Each thing's data type (things keep exactly their fields, `_id` included). */
  typeOf = new Map<string, string>();
  requests: SeenRequest[] = [];
  /** Consulted first for every request; the first to return a Response answers it. */
  overrides: Override[] = [];
  private nextId = 1;

  readonly fetch: Fetch = (input, init) => this.handle(input, init, false);
  readonly fetchCreate: Fetch = (input, init) => this.handle(input, init, true);

  insert(fields: Record<string, unknown>, dataType = "user"): string {
    const id = `1700000000000x${String(this.nextId++).padStart(18, "0")}`;
    this.things.set(id, { ...fields, _id: id });
    this.typeOf.set(id, dataType);
    return id;
  }

  /** The things of one data type. */
  ofType(dataType: string): Record<string, unknown>[] {
    return [...this.things.values()].filter((t) => this.typeOf.get(String(t._id)) === dataType);
  }

  /** Answers the next `count` requests matching `method` (and `path` suffix) with `respond`. */
  fault(method: string, respond: Override, count = Infinity, pathEnd?: string): void {
    let left = count;
    this.overrides.push((request, signal) => {
      if (left <= 0 || request.method !== method) return undefined;
      if (pathEnd !== undefined && !request.path.endsWith(pathEnd)) return undefined;
      left--;
      return respond(request, signal);
    });
  }

  count(method: string, pathEnd = ""): number {
    return this.requests.filter((r) => r.method === method && r.path.endsWith(pathEnd)).length;
  }

  private async handle(
    input: string | URL | Request,
    init: RequestInit | undefined,
    viaCreateFetch: boolean,
  ) {
    const url = new URL(String(input));
    const headers = new Headers(init?.headers);
    const request: SeenRequest = {
      method: init?.method ?? "GET",
      path: url.pathname,
      constraints: url.searchParams.has("constraints")
        ? JSON.parse(url.searchParams.get("constraints")!)
        : null,
      authorization: headers.get("authorization"),
      contentType: headers.get("content-type"),
      body: typeof init?.body === "string" ? init.body : "",
      cursor: url.searchParams.has("cursor") ? Number(url.searchParams.get("cursor")) : null,
      viaCreateFetch,
    };
    this.requests.push(request);
    const signal = init?.signal ?? undefined;
    for (const override of this.overrides) {
      const answer = await override(request, signal);
      if (answer) return answer;
    }
    if (request.authorization !== `Bearer ${TOKEN}`) return bubbleError(401, "UNAUTHORIZED", "bad token");
    const route = /^\/version-test\/api\/1\.1\/obj\/([^/]+)(\/.*)?$/.exec(request.path);
    assert(route, `unexpected path ${request.path}`);
    const dataType = decodeURIComponent(route[1]);
    const rest = route[2] ?? "";
    if (request.method === "POST" && rest === "") return this.create(dataType, request.body);
    if (request.method === "POST" && rest === "/bulk") {
      const lines = request.body.split("\n").map((line) => this.create(dataType, line));
      const texts = await Promise.all(lines.map((r) => r.text()));
      const out = texts.map((t, i) =>
        lines[i].status === 201 ? t : JSON.stringify({ status: "error", message: t })
      );
      return new Response(out.join("\n"), { status: 200, headers: { "content-type": "text/plain" } });
    }
    if (request.method === "GET" && rest === "") {
      const [c] = request.constraints as { key: string; constraint_type: string; value: unknown }[];
      const matches = this.ofType(dataType).filter((t) =>
        c.constraint_type === "in" ? (c.value as unknown[]).includes(t[c.key]) : t[c.key] === c.value
      );
      // Bubble's pages: `limit` things from `cursor` (at most 100), and how many remain after them
      const cursor = Number(url.searchParams.get("cursor") ?? 0);
      const limit = Math.min(Number(url.searchParams.get("limit") ?? 100), 100);
      const results = matches.slice(cursor, cursor + limit);
      const remaining = matches.length - cursor - results.length;
      return Response.json({ response: { cursor, results, count: results.length, remaining } });
    }
    if (request.method === "PATCH" || request.method === "DELETE") {
      const id = decodeURIComponent(rest.slice(1));
      const thing = this.typeOf.get(id) === dataType ? this.things.get(id) : undefined;
      if (!thing) return bubbleError(404, "MISSING_DATA", `object with id ${id} does not exist`);
      if (request.method === "DELETE") {
        this.things.delete(id);
        this.typeOf.delete(id);
      } else Object.assign(thing, JSON.parse(request.body));
      return new Response(null, { status: 204 });
    }
    throw new Error(`fake Bubble has no route for ${request.method} ${request.path}`);
  }

  private create(dataType: string, body: string): Response {
    const fields = JSON.parse(body) as Record<string, unknown>;
    const email = fields.email;
    if (
      dataType === "user" && typeof email === "string" && this.ofType("user").some((t) => t.email === email)
    ) {
      return bubbleError(400, "USED_EMAIL", `a user with email ${email} already exists`);
    }
    return Response.json({ status: "success", id: this.insert(fields, dataType) }, { status: 201 });
  }
}

/** An answer that never comes: resolves only by the request's timeout signal aborting it. */
export function hang(_request: SeenRequest, signal: AbortSignal | undefined): Promise<Response> {
  return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
}
