// Test bed for the portal (tests and bench): a temporary repository root with environment `t`
// (backends b1 and b2, both on 127.0.0.1), workshop WKSHP-Test, the real order listener in process
// (recording into a DirSink), a real SMTP sink for the participant emails, and the portal on a free
// loopback port with SQLite or PostgreSQL storage.
import { join } from "node:path";
import { loadConfig } from "../config/load.ts";
import type { Seat } from "../config/types.gen.ts";
import { type Listener, startListener } from "../mail/listener.ts";
import { DirSink } from "../mail/sink.ts";
import { type SmtpSink, startSmtpSink } from "../testing/smtp_sink.ts";
import { orderSender } from "./orders.ts";
import { type RunningPortal, startPortal } from "./server.ts";
import { openPortalStore, type PortalStore } from "./store.ts";
import { hashPassword } from "./security.ts";
export { Client } from "./client.ts";

export const HMAC_KEY = "portal-test-key-not-a-secret-0123456789";
export const API_USER = "apply-bot";
export const API_PASSWORD = "api-password-not-a-secret";
export const ADMIN_PASSWORD = "admin-password-not-a-secret";

export interface Bed {
  root: string;
  portal: RunningPortal;
  store: PortalStore;
  listener: Listener;
  sink: SmtpSink;
  sinkDir: string;
  recorded: Seat[];
  close(): Promise<void>;
}

let adminHash: string | undefined;

export async function startBed(opts: {
  store?: "sqlite" | { url: string };
  format?: "signed" | "original";
  /** Seats per backend of WKSHP-Test (b1 and b2 each). */
  seatsPerBackend?: number;
  capacity?: number;
  limits?: { perAddress: number; perEmail: number; windowMs: number };
  retentionDays?: number;
} = {}): Promise<Bed> {
  const root = await Deno.makeTempDir({ prefix: "wod-portal-" });
  const n = opts.seatsPerBackend ?? 20;
  await Deno.mkdir(join(root, "environments"));
  await Deno.writeTextFile(
    join(root, "environments", "t.yaml"),
    `name: t
admin_user: wodadmin
backends:
  - name: b1
    host: 127.0.0.1
    fqdn: b1.test
    hub_url: http://127.0.0.1:1
    students: [1, 2000]
    ranges:
      WKSHP-Test: [1, ${n}]
  - name: b2
    host: 127.0.0.1
    fqdn: b2.test
    hub_url: http://127.0.0.1:2
    students: [1, 2000]
    base_stdid: 10000
    ranges:
      WKSHP-Test: [1001, ${1000 + n}]
orders:
  listen: 127.0.0.1:10025
  senders: [portal@front.test]
  networks: [127.0.0.1/32]
  recipient: wodadmin
  hmac_secret_env: WOD_PORTAL_TEST_HMAC
  accept_unsigned: ${(opts.format ?? "signed") === "original"}
mail:
  from: wod@front.test
  smtp_host: 127.0.0.1
  smtp_port: 25
portal:
  order_format: ${opts.format ?? "signed"}
  admin_password_hash_env: WOD_PORTAL_TEST_ADMIN
  retention_days: ${opts.retentionDays ?? 30}
`,
  );
  await Deno.mkdir(join(root, "workshops", "WKSHP-Test"), { recursive: true });
  await Deno.writeTextFile(
    join(root, "workshops", "WKSHP-Test", "workshop.yaml"),
    `id: WKSHP-Test\ntitle: Test workshop\ndescription: A workshop for tests.\nduration: 2\nactive: true\n${
      opts.capacity ? `capacity: ${opts.capacity}\n` : ""
    }category: [Testing]\n`,
  );
  const cfg = await loadConfig(root);
  const bad = cfg.diagnostics.filter((d) => d.severity === "error");
  if (bad.length) throw new Error(`Test config invalid: ${JSON.stringify(bad[0])}`);
  const sinkDir = join(root, "orders");
  const listener = await startListener({
    cfg,
    env: "t",
    host: "127.0.0.1",
    port: 0,
    spoolDir: join(root, "spool"),
    sink: new DirSink(sinkDir),
    hmacKey: HMAC_KEY,
    drainDebounceMs: 5,
    limits: { maxConnections: 500 },
    log: () => {},
  });
  const sink = await startSmtpSink(join(root, "mail"));
  const env = structuredClone(cfg.environments.get("t")!.value);
  env.mail = { ...env.mail, smtp_port: sink.port };
  cfg.environments.get("t")!.value.mail = env.mail;
  adminHash ??= await hashPassword(ADMIN_PASSWORD);
  const vars: Record<string, string> = {
    WOD_PORTAL_TEST_HMAC: HMAC_KEY,
    WOD_PORTAL_TEST_ADMIN: adminHash,
    WOD_FRONTEND_USER: API_USER,
    WOD_FRONTEND_PASSWORD: API_PASSWORD,
  };
  const store = opts.store === undefined || opts.store === "sqlite"
    ? await openPortalStore({ kind: "sqlite", file: join(root, "portal.sqlite") })
    : await openPortalStore({ kind: "postgres", url: opts.store.url, max: 10 });
  const recorded: Seat[] = [];
  const portal = await startPortal({
    root,
    cfg,
    env: "t",
    port: 0,
    getenv: (k) => vars[k],
    store,
    orders: orderSender(env, {
      format: opts.format ?? "signed",
      hmacKey: HMAC_KEY,
      listen: `127.0.0.1:${listener.smtp.port}`,
    }),
    recordedSeats: () => Promise.resolve(recorded),
    secureCookies: false,
    tickMs: 200,
    limits: opts.limits ?? { perAddress: 100_000, perEmail: 100, windowMs: 3_600_000 },
    log: () => {},
  });
  return {
    root,
    portal,
    store,
    listener,
    sink,
    sinkDir,
    recorded,
    close: async () => {
      await portal.close();
      await listener.close();
      await sink.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

export function person(i: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    workshop: "WKSHP-Test",
    email: `person${i}@example.org`,
    first_name: "Grace",
    last_name: `Hopper ${i}`,
    company: "Navy",
    consent: "yes",
    website: "",
    ...extra,
  };
}
