// Expire: at time `now`, send the end-of-workshop reminder (once, recorded in the seat) and record
// the expiry orders (state/expire.ts decides which; `wod apply` or the reconciler carries them out).
import type { Config } from "../config/load.ts";
import { loadConfig, requireEnvironment } from "../config/load.ts";
import type { Environment, Order, Seat } from "../config/types.gen.ts";
import { openStore, seatKey, type StateStore } from "../state/store.ts";
import { identitiesFromEnv, unseal } from "../state/seal.ts";
import { expiryPlan, markReminded } from "../state/expire.ts";
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

/**
 * Sends the due reminders by email when possible; returns the seats to mark as reminded (those sent,
 * and those without an address: recorded either way so each seat is reminded once) and a log line per
 * reminder sent.
 */
async function sendReminders(
  cfg: Config,
  env: Environment,
  remind: Seat[],
  now: Date,
  identities: string[] | undefined,
  log: (line: string) => void,
): Promise<{ reminded: string[]; sent: string[] }> {
  const canMail = !!env.mail && (env.mail.send_credentials ?? true);
  const ident = canMail ? (identities ?? await identitiesFromEnv()) : [];
  const mail = canMail ? mailer(env.mail!) : undefined;
  const reminded: string[] = [], sent: string[] = [];
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
          sent.push(`${seatKey(s)}: reminder sent (order ${s.orders.at(-1)})`);
        } catch (err) {
          log(
            `warning: reminder for ${seatKey(s)} (order ${s.orders.at(-1)}) not sent (retried next run): ${
              (err as Error).message
            }`,
          );
          continue;
        }
      } else {
        log(
          `${seatKey(s)}: reminder due for order ${
            s.orders.at(-1)
          }, no email to send it to (recorded anyway)`,
        );
      }
      reminded.push(seatKey(s));
    }
  } finally {
    mail?.close();
  }
  return { reminded, sent };
}

export async function expire(opts: ExpireOptions): Promise<ExpireReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const cfg = opts.config ?? await loadConfig(opts.root, { privateDir: opts.privateDir });
  const env = requireEnvironment(cfg, opts.env).value;
  const now = opts.now ?? new Date();
  const nowIso = now.toISOString();
  const store = opts.store ??
    await openStore(opts.root, opts.env, { config: cfg, privateDir: opts.privateDir });
  try {
    const { orders, remind } = expiryPlan(cfg, opts.env, env, await store.readSeats(), now);
    let reminded: string[] = [];
    if (remind.length > 0) {
      const r = await sendReminders(cfg, env, remind, now, opts.identities, log);
      reminded = r.reminded;
      await markReminded(store, reminded, nowIso);
      for (const line of r.sent) log(line);
    }
    let recorded: string[] = [];
    if (orders.length > 0) {
      const res = await store.recordOrders(orders);
      recorded = res.recorded;
      for (const r of res.rejected) log(`warning: expire order ${r.id}: ${r.reason}`);
      for (const o of orders) {
        if (res.recorded.includes(o.id)) {
          log(`${o.backend}/${o.seats[0]}: ${o.action} (${o.reason}), order ${o.id}`);
        }
      }
    }
    if (orders.length === 0 && remind.length === 0) log(`Nothing to expire in ${opts.env} at ${nowIso}`);
    return { orders, recorded, reminded };
  } finally {
    if (!opts.store) await store.close();
  }
}
