// Expiry as data: at time `now`, which seats are due for the end-of-workshop reminder, and which
// become orders CLEANUP then RESET (workshop `reset: true`) or PURGE: expired seats, and seats stuck
// in provisioning longer than the environment's timeout (default 10 min, as failed). The orders have
// deterministic ids, so recording them twice records them once. Sending the reminders is
// reconcile/expire.ts (state/ sends nothing).
import type { Config } from "../config/load.ts";
import type { Environment, Order, Seat } from "../config/types.gen.ts";
import type { StateStore } from "./store.ts";

export interface ExpiryPlan {
  /** Orders to record (two per ending seat). */
  orders: Order[];
  /** Active seats whose reminder is due and not sent yet. */
  remind: Seat[];
}

function compact(iso: string): string {
  return iso.replace(/[-:]/g, "").replace(/\.\d+/, "");
}

/** What expiry does at `now` to these seats (reads nothing, writes nothing). */
export function expiryPlan(
  cfg: Config,
  envName: string,
  env: Environment,
  seats: Seat[],
  now: Date,
): ExpiryPlan {
  const nowIso = now.toISOString();
  const reminderMs = (env.timing?.reminder_minutes ?? 60) * 60_000;
  const stuckMs = (env.timing?.provisioning_timeout_minutes ?? 10) * 60_000;
  const orders: Order[] = [];
  const remind: Seat[] = [];
  const endOrders = (s: Seat, base: string, reason: string) => {
    const ws = cfg.workshops.get(s.workshop ?? "")?.value;
    const common = {
      env: envName,
      backend: s.backend,
      workshop: s.workshop ?? "unknown",
      seats: [s.seat, s.seat] as [number, number],
      source: "expire" as const,
      received: nowIso,
      reason,
    };
    const cust = s.customer !== undefined ? { customer: s.customer } : {};
    orders.push({ id: `${base}-cleanup`, action: "CLEANUP", ...common, ...cust });
    const second = ws?.reset ? "RESET" : "PURGE";
    orders.push({ id: `${base}-${second.toLowerCase()}`, action: second, ...common, ...cust });
  };
  for (const s of seats) {
    const first = s.pending?.[0];
    if (s.status === "active" && s.expires) {
      const end = Date.parse(s.expires);
      if (now.getTime() >= end) {
        endOrders(s, `exp-${s.backend}-${s.seat}-${compact(s.expires)}`, `expired at ${s.expires}`);
      } else if (now.getTime() >= end - reminderMs && !s.reminded) {
        remind.push(s);
      }
    } else if (
      (s.status === "provisioning" || s.status === "failed") && first?.action === "CREATE" &&
      now.getTime() - Date.parse(first.since) >= stuckMs
    ) {
      endOrders(
        s,
        `stuck-${s.backend}-${s.seat}-${first.order}`.slice(0, 110),
        `failed: still provisioning ${
          Math.round((now.getTime() - Date.parse(first.since)) / 60_000)
        } min after order ${first.order}`,
      );
    }
  }
  return { orders, remind };
}

/** Records that these seats were reminded (each once; only while still active). */
export async function markReminded(store: StateStore, keys: string[], nowIso: string): Promise<boolean> {
  if (keys.length === 0) return false;
  return await store.updateSeats(`expire ${store.env}: reminded ${keys.join(", ")}`, (current) => {
    const out: Seat[] = [];
    for (const key of keys) {
      const s = current.get(key);
      if (s && !s.reminded && s.status === "active") out.push({ ...s, reminded: nowIso, updated: nowIso });
    }
    return out;
  });
}
