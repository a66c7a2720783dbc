// Expire: at time `now`, send the end-of-workshop reminder (once, recorded in the seat), turn
// expired seats into orders CLEANUP then RESET (workshop `reset: true`) or PURGE, and clean up seats
// stuck in provisioning longer than the environment's timeout (default 10 min) as failed. The orders
// have deterministic ids, so running expire twice records them once.
import type { Config } from "../config/load.ts";
import { loadConfig, requireEnvironment } from "../config/load.ts";
import type { Order, Seat } from "../config/types.gen.ts";
import { openStore, seatKey, type StateStore } from "./store.ts";
import { identitiesFromEnv, unseal } from "./seal.ts";
import { mailer, renderTemplate } from "../notify/email.ts";

export interface ExpireOptions {
  root: string;
  env: string;
  privateDir?: string;
  now?: Date;
  config?: Config;
  store?: StateStore;
  log?: (line: string) => void;
  /** age identities opening sealed emails (default: WOD_AGE_IDENTITY / WOD_AGE_IDENTITY_FILE). */
  identities?: string[];
}

export interface ExpireReport {
  orders: Order[];
  recorded: string[];
  reminded: string[];
}

function compact(iso: string): string {
  return iso.replace(/[-:]/g, "").replace(/\.\d+/, "");
}

export async function expire(opts: ExpireOptions): Promise<ExpireReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const cfg = opts.config ?? await loadConfig(opts.root, { privateDir: opts.privateDir });
  const entry = requireEnvironment(cfg, opts.env);
  const env = entry.value;
  const now = opts.now ?? new Date();
  const nowIso = now.toISOString();
  const reminderMs = (env.timing?.reminder_minutes ?? 60) * 60_000;
  const stuckMs = (env.timing?.provisioning_timeout_minutes ?? 10) * 60_000;
  const store = opts.store ??
    await openStore(opts.root, opts.env, { config: cfg, privateDir: opts.privateDir });
  try {
    const seats = await store.readSeats();
    const orders: Order[] = [];
    const remind: Seat[] = [];
    const endOrders = (s: Seat, base: string, reason: string) => {
      const ws = cfg.workshops.get(s.workshop ?? "")?.value;
      const common = {
        env: opts.env,
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

    // Reminders: email when possible; recorded either way so each seat is reminded once.
    const reminded: string[] = [];
    if (remind.length > 0) {
      const canMail = !!env.mail && (env.mail.send_credentials ?? true);
      const ident = canMail ? (opts.identities ?? await identitiesFromEnv()) : [];
      const mail = canMail ? mailer(env.mail!) : undefined;
      const sentKeys = new Set<string>();
      try {
        for (const s of remind) {
          if (mail && s.email_sealed && ident.length > 0) {
            const ws = cfg.workshops.get(s.workshop ?? "")?.value;
            try {
              const to = await unseal(s.email_sealed, ident);
              await mail.send(
                to,
                await renderTemplate("reminder", {
                  WORKSHOP: s.workshop ?? "",
                  WORKSHOP_TITLE: ws?.title ?? s.workshop ?? "",
                  EXPIRES: s.expires!.slice(0, 16).replace("T", " "),
                  MINUTES: Math.max(1, Math.round((Date.parse(s.expires!) - now.getTime()) / 60_000)),
                }),
              );
              sentKeys.add(seatKey(s));
            } catch (err) {
              log(
                `warning: reminder for ${seatKey(s)} not sent (retried next run): ${(err as Error).message}`,
              );
              continue;
            }
          } else {
            log(`${seatKey(s)}: reminder due, no email to send it to (recorded anyway)`);
          }
          reminded.push(seatKey(s));
        }
      } finally {
        mail?.close();
      }
      if (reminded.length > 0) {
        await store.updateSeats(`expire ${opts.env}: reminded ${reminded.join(", ")}`, (current) => {
          const out: Seat[] = [];
          for (const key of reminded) {
            const s = current.get(key);
            if (s && !s.reminded && s.status === "active") {
              out.push({ ...s, reminded: nowIso, updated: nowIso });
            }
          }
          return out;
        });
      }
      for (const k of sentKeys) log(`${k}: reminder sent`);
    }

    let recorded: string[] = [];
    if (orders.length > 0) {
      const res = await store.recordOrders(orders);
      recorded = res.recorded;
      for (const r of res.rejected) log(`warning: expire order ${r.id}: ${r.reason}`);
      for (const o of orders) {
        if (res.recorded.includes(o.id)) log(`${o.backend}/${o.seats[0]}: ${o.action} (${o.reason})`);
      }
    }
    if (orders.length === 0 && remind.length === 0) log(`Nothing to expire in ${opts.env} at ${nowIso}`);
    return { orders, recorded, reminded };
  } finally {
    if (!opts.store) await store.close();
  }
}
