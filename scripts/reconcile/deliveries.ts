// Front-end callbacks that failed are not only logged: they are recorded as pending deliveries in
// state (state/deliveries.ts) and retried on every apply pass until the front end takes them, with
// exponential backoff per delivery. The new password a callback carries is kept sealed with age to
// the environment's seal.recipients (opened with WOD_AGE_IDENTITY[_FILE]); without recipients the
// retry reports the action without the password (said in the log).
import type { Environment } from "../config/types.gen.ts";
import type { StateStore } from "../state/store.ts";
import { identitiesFromEnv, seal, unseal } from "../state/seal.ts";
import { nextTry, type PendingDelivery, readDeliveries, updateDeliveries } from "../state/deliveries.ts";
import type { Callback, Delivery } from "./deliver.ts";

/** A callback that failed in this pass. */
export interface FailedCallback {
  backend: string;
  seat: number;
  order: string;
  callback: Callback;
  error: string;
}

export interface DeliveriesReport {
  /** Retried and now delivered. */
  delivered: string[];
  /** Failed in this pass (retries and new failures). */
  failed: number;
  /** Still pending after this pass. */
  pending: number;
}

/** The pending deliveries due at `nowMs`, and how many are pending in all. */
export async function dueDeliveries(
  store: StateStore,
  nowMs: number,
): Promise<{ due: PendingDelivery[]; total: number }> {
  const all = await readDeliveries(store);
  return { due: all.filter((d) => Date.parse(d.next_try) <= nowMs), total: all.length };
}

/** Records this pass's failed callbacks as pending deliveries (one commit); returns how many. */
export async function recordFailedCallbacks(
  store: StateStore,
  env: Environment,
  failed: FailedCallback[],
  nowMs: number,
  log: (line: string) => void,
): Promise<number> {
  if (failed.length === 0) return 0;
  const recipients = env.seal?.recipients ?? [];
  const entries: PendingDelivery[] = [];
  for (const f of failed) {
    const c = f.callback;
    const d: PendingDelivery = {
      id: `${f.order}:${c.action}`,
      backend: f.backend,
      seat: f.seat,
      action: c.action,
      order: f.order,
      db_student_id: c.dbStudentId,
      since: new Date(nowMs).toISOString(),
      attempts: 1,
      next_try: nextTry(1, nowMs),
      last_error: f.error,
    };
    if (c.customer !== undefined) d.customer = c.customer;
    if (c.completion !== undefined) d.completion = c.completion;
    if (c.heldForReset !== undefined) d.held_for_reset = c.heldForReset;
    if (c.password && recipients.length > 0) d.password_sealed = await seal(c.password, recipients);
    else if (c.password) {
      log(
        `warning: ${f.backend}/${f.seat}: no seal.recipients: the retry of order ${f.order} reports no password`,
      );
    }
    entries.push(d);
  }
  const ids = new Set(entries.map((e) => e.id));
  const ok = await updateDeliveries(
    store,
    `deliveries ${store.env}: pending ${entries.map((e) => `${e.action} ${e.backend}/${e.seat}`).join(", ")}`
      .slice(0, 500),
    (cur) => [...cur.filter((d) => !ids.has(d.id)), ...entries],
  );
  if (!ok) log(`warning: the state store cannot keep pending deliveries: ${failed.length} callback(s) lost`);
  for (const e of entries) {
    log(
      `${e.backend}/${e.seat}: ${e.action} of order ${e.order} pending delivery to the front end (retry at ${e.next_try})`,
    );
  }
  return entries.length;
}

function callbackOf(d: PendingDelivery, password: string | undefined): Callback {
  const c: Callback = { action: d.action, dbStudentId: d.db_student_id };
  if (d.customer !== undefined) c.customer = d.customer;
  if (password !== undefined) c.password = password;
  if (d.completion !== undefined) c.completion = d.completion;
  if (d.held_for_reset !== undefined) c.heldForReset = d.held_for_reset;
  return c;
}

/** Retries the due deliveries; delivered ones leave the list, failed ones back off (one commit). */
export async function retryDeliveries(opts: {
  store: StateStore;
  delivery: Delivery;
  due: PendingDelivery[];
  identities?: string[];
  nowMs: number;
  log: (line: string) => void;
}): Promise<DeliveriesReport> {
  const { due, log } = opts;
  const ident = due.some((d) => d.password_sealed) ? (opts.identities ?? await identitiesFromEnv()) : [];
  const delivered: string[] = [];
  const failed = new Map<string, string>();
  for (const d of due) {
    try {
      const password = d.password_sealed ? await unseal(d.password_sealed, ident) : undefined;
      if (!await opts.delivery.report(callbackOf(d, password))) throw new Error("no front end configured");
      delivered.push(d.id);
      log(
        `${d.backend}/${d.seat}: ${d.action} of order ${d.order} delivered to the front end (attempt ${
          d.attempts + 1
        })`,
      );
    } catch (err) {
      failed.set(d.id, (err as Error).message.split("\n")[0]);
      log(
        `warning: ${d.backend}/${d.seat}: ${d.action} of order ${d.order} still not delivered: ${
          failed.get(d.id)
        }`,
      );
    }
  }
  let pending = 0;
  await updateDeliveries(opts.store, `deliveries ${opts.store.env}: retried ${due.length}`, (cur) => {
    const next = cur.filter((d) => !delivered.includes(d.id)).map((d) => {
      const why = failed.get(d.id);
      if (why === undefined) return d;
      return {
        ...d,
        attempts: d.attempts + 1,
        next_try: nextTry(d.attempts + 1, opts.nowMs),
        last_error: why,
      };
    });
    pending = next.length;
    return next;
  });
  return { delivered, failed: failed.size, pending };
}
