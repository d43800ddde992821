// The Bubble calls for one row, sent alone: an INSERT creates its thing (looking first when an earlier
// attempt may have made it, and recovering a used email), an UPDATE modifies it (or creates a mapped record
// Bubble lacks), a DELETE does what its mapping says (deletes.ts). What comes back is the row's verdict
// (verdicts.ts); the run (process.ts) decides when a row may be sent and writes its verdict.

import { isBackfill } from "./backfill.ts";
import type { BubbleClient, Failure } from "./bubble.ts";
import { emailOf } from "./bubble_answers.ts";
import type { Config } from "./config.ts";
import { syncDelete } from "./deletes.ts";
import { createFields, type Prepared } from "./prepare.ts";
import { triedBefore } from "./queue.ts";
import {
  aboutUsedEmail,
  failedWith,
  noAnswer,
  permanent,
  refusedCreate,
  unsettled,
  type Verdict,
} from "./verdicts.ts";

/** A user's built-in fields that a modify leaves out unless BUBBLE_MODIFY_USER_CREDENTIALS says otherwise. */
const USER_CREDENTIALS = ["email", "password"];

/**
 * Sends a row to Bubble alone (not in a bulk call): the requests its operation takes, at most
 * MAX_REQUESTS_PER_ROW.
 */
export class RowSync {
  constructor(
    private readonly bubble: BubbleClient,
    private readonly config: Pick<Config, "modifyUserCredentials" | "settleSeconds">,
  ) {}

  /** Sends the row's requests and gives its verdict. */
  async sync(item: Prepared): Promise<Verdict> {
    return item.operation === "INSERT"
      ? await this.insert(item)
      : item.operation === "UPDATE"
      ? await this.update(item)
      : await syncDelete(item, this.bubble);
  }

  /**
   * Creates the thing, unless Bubble has it already: an earlier attempt (or Deno re-sending the create) created
   * it, or the database links the record to a thing (it left its mapping's rows and came back, say), which is
   * modified instead. At most MAX_REQUESTS_PER_ROW requests: a search, or a modify, then a create and what
   * recovering a used email takes.
   */
  private async insert(item: Prepared): Promise<Verdict> {
    const { dataType, keyField } = item.target;
    // A backfilled row is looked up by its key whatever the link says (backfill.ts).
    let existing = isBackfill(item.row) ? null : item.row.bubble_id;
    const searched = triedBefore(item.row);
    if (searched) {
      // An earlier attempt may have created it and died before completing the row: look before creating. The
      // search also finds a linked thing, and Bubble no longer having it.
      const found = await this.bubble.findOne(dataType, keyField, item.key);
      if (!found.ok) return failedWith(found, "looking up an earlier attempt");
      if (found.thing && existing === null) return { kind: "complete", bubbleId: String(found.thing._id) };
      existing = found.thing ? String(found.thing._id) : null;
    }
    if (existing !== null) {
      const modified = await this.bubble.modify(dataType, existing, this.modifiable(item));
      if (modified.ok) return { kind: "complete", bubbleId: existing };
      if (modified.status !== 404) return failedWith(modified, `modifying ${existing}`);
      if (searched) {
        // Deleted in Bubble since the search: the retry searches again, and creates it.
        return {
          kind: "fail",
          error: `modifying ${existing}: ${modified.message} (deleted since it was found; retrying)`,
          reason: { kind: "retryable" },
          retryAfterSeconds: null,
        };
      }
      // 404: Bubble no longer has the linked thing (deleted there): it is created anew.
    }
    return await this.create(item);
  }

  /** Creates the row's thing: a create, or a mapped modify whose thing Bubble does not have (update). */
  private async create(item: Prepared): Promise<Verdict> {
    const { dataType } = item.target;
    const created = await this.bubble.create(dataType, createFields(item));
    if (created.ok) return { kind: "complete", bubbleId: created.id };
    // A table no mapping names keeps the rule of a stack without mappings: any type whose fields have an email.
    const users = item.target.mapping === null || dataType === "user";
    if (users && refusedCreate(created) && typeof item.fields.email === "string") {
      return await this.recoverUsedEmail(item, item.fields.email, created);
    }
    return noAnswer(created)
      ? unsettled(failedWith(created), this.config.settleSeconds)
      : failedWith(created);
  }

  /**
   * Bubble refused the create, perhaps because the email is taken (however it words that). Either we created
   * this user already (an earlier attempt, or a create Deno re-sent on its own), or the person had a Bubble
   * account before: find the user by email and link the row to it, unless that user belongs to another
   * record. When no user has the email, the refusal was about something else and keeps its own message.
   */
  private async recoverUsedEmail(item: Prepared, email: string, refusal: Failure): Promise<Verdict> {
    const { dataType, keyField } = item.target;
    const found = await this.bubble.findOne(dataType, "email", email);
    if (!found.ok) return failedWith(found, `${refusal.message}; looking up the user holding the email`);
    // A search that ignored the constraint would hand back someone else: only the same email counts.
    const holder = found.thing && emailOf(found.thing)?.toLowerCase() === email.toLowerCase()
      ? found.thing
      : null;
    if (holder === null) {
      if (!aboutUsedEmail(refusal)) return failedWith(refusal);
      return {
        kind: "fail",
        error: `${refusal.message} (but no user with that email was found; retrying)`,
        reason: { httpStatus: null },
        retryAfterSeconds: null,
      };
    }
    const bubbleId = String(holder._id);
    const owner = holder[keyField];
    if (owner === item.key) return { kind: "complete", bubbleId };
    if (owner !== undefined && owner !== null && owner !== "") {
      return permanent(
        `the email is already used by Bubble ${dataType} ${bubbleId}, which belongs to ` +
          `${keyField} ${JSON.stringify(owner)}`,
      );
    }
    // A user made in Bubble itself: adopt it, with this row's fields and key.
    const linked = await this.bubble.modify(dataType, bubbleId, this.modifiable(item));
    if (!linked.ok) return failedWith(linked, `linking the existing Bubble user ${bubbleId}`);
    return { kind: "complete", bubbleId };
  }

  /**
   * The fields a modify sends (a mapped row's nulls included: they empty the field): a user's email and password
   * are left out unless configured, since Bubble does not document that a modify may change them (a refused
   * modify would fail every UPDATE of a user).
   */
  private modifiable(item: Prepared): Record<string, unknown> {
    if (item.target.dataType !== "user" || this.config.modifyUserCredentials) return item.fields;
    return Object.fromEntries(
      Object.entries(item.fields).filter(([name]) => !USER_CREDENTIALS.includes(name)),
    );
  }

  /**
   * Modifies the thing the row names by its link, else the one carrying its key. A mapped row carries every
   * mapped column, so when Bubble has no such thing (a record from before the trigger that no backfill
   * reached, or one deleted in Bubble) it is created: Bubble then holds what Supabase holds. An unmapped row's
   * payload may be a part of the record only: it fails for good, saying so.
   */
  private async update(item: Prepared): Promise<Verdict> {
    const { dataType, keyField } = item.target;
    const mapped = item.target.mapping !== null;
    let bubbleId = item.row.bubble_id;
    if (bubbleId === null) {
      const found = await this.bubble.findOne(dataType, keyField, item.key);
      if (!found.ok) return failedWith(found, "looking up the thing to modify");
      if (!found.thing) {
        if (mapped) return await this.create(item);
        const key = JSON.stringify(item.key);
        return permanent(`no Bubble ${dataType} has ${keyField} = ${key} to modify (was its INSERT synced?)`);
      }
      bubbleId = String(found.thing._id);
    }
    const modified = await this.bubble.modify(dataType, bubbleId, this.modifiable(item));
    if (modified.ok) return { kind: "complete", bubbleId };
    // The linked thing was deleted in Bubble: a mapped record is made again (its retry would search first).
    if (mapped && modified.status === 404 && item.row.bubble_id !== null) return await this.create(item);
    return failedWith(modified, `modifying ${bubbleId}`);
  }
}
