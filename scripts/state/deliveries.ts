// Pending deliveries: front-end callbacks that failed (the front end was down, refused, timed out)
// and are retried until delivered, instead of only being logged. They live in the state tree as
// state/<env>/deliveries.json, a list committed through the store's optimistic transactions; each
// entry names the seat, the action and its order, what the callback carries (a new password only
// sealed with age to the environment's seal.recipients, never in plain text), how often it failed and
// when it is tried next (exponential backoff). `wod apply` and `wod reconcile` retry the due ones on
// every pass; `wod state` and the reconciler's /health show them.
import { WodError } from "../common/errors.ts";
import type { SeatAction } from "./machine.ts";
import type { StateStore } from "./store.ts";
import { treeOf } from "./lease.ts";
import { STATE_DIR } from "./read.ts";

export interface PendingDelivery {
  /** `<order>:<action>`: one callback per action of an order. */
  id: string;
  backend: string;
  seat: number;
  action: SeatAction;
  order: string;
  /** What the callback carries. */
  db_student_id: number;
  customer?: string;
  completion?: number;
  held_for_reset?: boolean;
  /** The seat's new password, sealed (absent: none, or no seal.recipients to keep it with). */
  password_sealed?: string;
  since: string;
  attempts: number;
  next_try: string;
  last_error: string;
}

/** First retry after 10 s, doubled per failure, at most 10 min apart. */
export function nextTry(attempts: number, nowMs: number): string {
  const delay = Math.min(10 * 60_000, 10_000 * 2 ** Math.max(0, attempts - 1));
  return new Date(nowMs + delay).toISOString();
}

export function deliveriesPath(env: string, prefix = STATE_DIR): string {
  return `${prefix}/${env}/deliveries.json`;
}

function parse(text: string | undefined, path: string): PendingDelivery[] {
  if (!text) return [];
  try {
    const v = JSON.parse(text);
    if (!Array.isArray(v)) throw new Error("not a list");
    return v as PendingDelivery[];
  } catch (err) {
    throw new WodError(
      `The pending deliveries file ${path} on the state branch is not a JSON list (${
        (err as Error).message
      }): fix or delete it`,
    );
  }
}

/** The pending deliveries as recorded now ([] for a store without a tree). */
export async function readDeliveries(store: StateStore): Promise<PendingDelivery[]> {
  const t = treeOf(store);
  if (!t) return [];
  const path = deliveriesPath(store.env, t.prefix);
  return parse(await (await t.tree.snapshot()).read(path), path);
}

/**
 * Changes the list in one commit: `fn` gets the current list and returns the new one (undefined: no
 * change). False when nothing was committed, or when the store cannot keep deliveries (no tree).
 */
export async function updateDeliveries(
  store: StateStore,
  message: string,
  fn: (current: PendingDelivery[]) => PendingDelivery[] | undefined,
): Promise<boolean> {
  const t = treeOf(store);
  if (!t) return false;
  const path = deliveriesPath(store.env, t.prefix);
  return await t.tree.transact(message, async (view) => {
    const next = fn(parse(await view.read(path), path));
    if (!next) return undefined;
    return new Map([[path, next.length === 0 ? null : JSON.stringify(next, null, 2) + "\n"]]);
  });
}
