// Builds a running portal from an environment's configuration: storage (SQLite file under data_dir,
// or PostgreSQL from the URL in portal.database_url_env), the signing secret, the mailer, the order
// sender, the recorded-state reader, the callback API and admin credentials; then Deno.serve.
import { join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { type Config, requireEnvironment } from "../config/load.ts";
import type { EnvironmentBackend, Seat } from "../config/types.gen.ts";
import { WodError } from "../common/errors.ts";
import { type Mailer, mailer } from "../notify/email.ts";
import { Portal, type PortalOptions } from "./app.ts";
import { type OrderSender, orderSender } from "./orders.ts";
import { openPortalStore, type PortalStore } from "./store.ts";
import { isPasswordHash, randomToken } from "./security.ts";
import { hubUrlFor } from "../config/connection.ts";

export interface StartOptions {
  root: string;
  cfg: Config;
  env: string;
  privateDir?: string;
  /** Overrides portal.data_dir. */
  dataDir?: string;
  host?: string;
  port?: number;
  getenv?: (k: string) => string | undefined;
  /** Replace parts (tests, bench). */
  store?: PortalStore;
  orders?: OrderSender;
  mailer?: Mailer;
  recordedSeats?: () => Promise<Seat[]>;
  secureCookies?: boolean;
  tickMs?: number;
  log?: PortalOptions["log"];
  limits?: PortalOptions["limits"];
  now?: () => Date;
}

export interface RunningPortal {
  portal: Portal;
  store: PortalStore;
  url: string;
  server: Deno.HttpServer;
  close(): Promise<void>;
}

/** The secret from portal.secret_env, else one kept in data_dir/secret (created 0600 on first start). */
async function secretOf(
  dataDir: string,
  envVar: string | undefined,
  getenv: (k: string) => string | undefined,
) {
  if (envVar) {
    const v = getenv(envVar);
    if (!v || v.length < 32) {
      throw new WodError(`${envVar} (portal.secret_env) must hold a secret of at least 32 characters`);
    }
    return v;
  }
  const file = join(dataDir, "secret");
  if (existsSync(file)) return (await Deno.readTextFile(file)).trim();
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const s = randomToken(48);
  await Deno.writeTextFile(file, s + "\n", { mode: 0o600, createNew: true }).catch(async () => {});
  return (await Deno.readTextFile(file)).trim();
}

export function portalDataDir(root: string, env: string, dataDir?: string): string {
  return dataDir ? resolve(root, dataDir) : join(root, ".wod", "portal", env);
}

export async function openConfiguredStore(
  root: string,
  cfg: Config,
  env: string,
  getenv: (k: string) => string | undefined = (k) => Deno.env.get(k),
  dataDir?: string,
): Promise<PortalStore> {
  const e = cfg.environments.get(env)!;
  const p = e.value.portal ?? {};
  if ((p.database ?? "sqlite") === "postgres") {
    const v = p.database_url_env;
    const url = v ? getenv(v) : undefined;
    if (!v || !url) {
      throw new WodError(
        `The portal of ${e.file} uses PostgreSQL: set portal.database_url_env and that variable to postgres://USER:PASSWORD@HOST:PORT/DB${
          v ? ` (${v} is not set)` : ""
        }`,
      );
    }
    return await openPortalStore({ kind: "postgres", url });
  }
  return await openPortalStore({
    kind: "sqlite",
    file: join(portalDataDir(root, env, dataDir ?? p.data_dir), "portal.sqlite"),
  });
}

export async function startPortal(o: StartOptions): Promise<RunningPortal> {
  const getenv = o.getenv ?? ((k: string) => Deno.env.get(k));
  const entry = requireEnvironment(o.cfg, o.env);
  const env = entry.value;
  const p = env.portal ?? {};
  if (!env.mail) {
    throw new WodError(
      `The portal sends emails: add a mail section (smtp_host, smtp_port, from) to ${entry.file}`,
    );
  }
  const dataDir = portalDataDir(o.root, o.env, o.dataDir ?? p.data_dir);
  const secret = await secretOf(dataDir, p.secret_env, getenv);
  const format = p.order_format ?? "signed";
  const hmacKey = env.orders?.hmac_secret_env ? getenv(env.orders.hmac_secret_env) : undefined;
  if (format === "signed" && !hmacKey && !o.orders) {
    throw new WodError(
      `The portal of ${entry.file} sends signed orders: set orders.hmac_secret_env and that variable (the listener's HMAC key), or portal.order_format: original`,
    );
  }
  const userVar = env.frontend?.username_env ?? "WOD_FRONTEND_USER";
  const passVar = env.frontend?.password_env ?? "WOD_FRONTEND_PASSWORD";
  const apiUser = getenv(userVar);
  const apiPass = getenv(passVar);
  let admin: PortalOptions["admin"];
  if (p.admin_password_hash_env) {
    const h = getenv(p.admin_password_hash_env);
    if (!h || !isPasswordHash(h)) {
      throw new WodError(
        `${p.admin_password_hash_env} (portal.admin_password_hash_env) must hold a hash from \`deno task wod portal --hash-password\``,
      );
    }
    admin = { username: p.admin_user ?? "admin", passwordHash: h };
  }
  const store = o.store ?? await openConfiguredStore(o.root, o.cfg, o.env, getenv, o.dataDir);
  const orders = o.orders ?? orderSender(env, { format, hmacKey, sender: p.order_sender });
  const mail = o.mailer ?? mailer(env.mail);
  // One state store for the portal's lifetime: each read fetches the latest tip into its clone.
  let stateStore: Promise<import("../state/store.ts").StateStore> | undefined;
  const recordedSeats = o.recordedSeats ?? (async () => {
    if (!stateStore) {
      const { openStore } = await import("../state/store.ts");
      stateStore = openStore(o.root, o.env, { config: o.cfg, privateDir: o.privateDir });
      stateStore.catch(() => (stateStore = undefined));
    }
    return await (await stateStore).readSeats();
  });
  const host = o.host ?? "127.0.0.1";
  const publicUrlFallback = (port: number) => `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const holder: { portal?: Portal } = {};
  const ready = Promise.withResolvers<number>();
  const server = Deno.serve({
    hostname: host,
    port: o.port ?? 8088,
    onListen: ({ port }) => ready.resolve(port),
  }, (req, info) => holder.portal!.handler(req, info));
  const port = await ready.promise;
  const portal = holder.portal = new Portal({
    cfg: o.cfg,
    env: o.env,
    store,
    secret,
    publicUrl: p.public_url ?? publicUrlFallback(port),
    orders,
    orderFormat: format,
    mailer: mail,
    recordedSeats,
    api: apiUser && apiPass ? { username: apiUser, password: apiPass } : undefined,
    admin,
    limits: o.limits ?? {
      perAddress: p.rate_limit_per_address ?? 20,
      perEmail: p.rate_limit_per_email ?? 5,
      windowMs: 3_600_000,
    },
    retentionDays: p.retention_days ?? 30,
    termsUrl: p.terms_url,
    trustProxy: p.trust_proxy ?? false,
    secureCookies: o.secureCookies,
    hubUrl: (b: EnvironmentBackend) => Promise.resolve(hubUrlFor(b)),
    tickMs: o.tickMs,
    log: o.log,
    now: o.now,
  });
  await portal.start();
  return {
    portal,
    store,
    url: publicUrlFallback(port),
    server,
    close: async () => {
      await server.shutdown();
      await portal.close();
      orders.close();
      mail.close();
      await store.close();
      if (stateStore) await (await stateStore.catch(() => undefined))?.close();
    },
  };
}
