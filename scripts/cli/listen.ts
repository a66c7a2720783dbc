// wod listen: the SMTP order listener (runs until SIGTERM or SIGINT).
import { join, resolve } from "node:path";
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError, WodError } from "../common/errors.ts";
import { type Config, type EnvironmentEntry, loadConfig, requireEnvironment } from "../config/load.ts";
import { throwOnConfigErrors } from "../config/report.ts";
import { startListener } from "../mail/listener.ts";
import { createLogger, type LogFn } from "../common/log.ts";
import { DirSink, type OrderSink } from "../mail/sink.ts";
import { DispatchSink } from "../mail/dispatch.ts";
import { wakingSink } from "../mail/wake.ts";

export const help = `
Usage: deno task wod listen --env ENV [--listen HOST:PORT] [--health HOST:PORT|none] [--spool DIR]

The SMTP order listener of environment ENV: accepts orders in the original format (Subject
"CREATE <seat> <customerId> <email>", body the workshop name; also CLEANUP, RESET, PURGE, CHLG-) and
signed native orders (Subject WOD-ORDER, HMAC-SHA256), from the senders and client networks of the
environment's "orders" block only. An accepted order is fsynced to the spool before the 250 reply; a
worker records spooled orders in the state store (several per commit), or with orders.dispatch
starts the order workflow per order (workflow_dispatch; GITHUB_TOKEN, state.github_repo or
GITHUB_REPOSITORY, WOD_ORDER_WORKFLOW, GITHUB_REF_NAME), and deletes them from the spool only when
the store or GitHub confirmed them; an order the store refuses goes to dead-letter.jsonl in the
spool (reason in the ledger and in /health) and the drain goes on. Logs are JSON lines on stdout.

Limits (orders.limits of the environment, defaults in scripts/mail/smtp.ts): connections in all and
per client address, new connections per second per address, errors and refusals per connection
(then 421 and close), refused sessions per address (then refused at accept for 10 minutes). Client
networks, per-address caps and rates are checked right after accept; refused sockets are closed at
once. GET /health answers 503 when accept is stalled or descriptors are near the limit.

Unsigned orders (the original format) are accepted when orders.accept_unsigned is true (default:
true without orders.hmac_secret_env, false with it). See scripts/mail/README.md (trust model).

Stops on SIGTERM/SIGINT: no new connections, messages in progress get --stop-grace, then the spool
is drained once; the whole stop takes at most --stop-timeout (the spool is durable: what could not
be drained is drained at the next start). A second signal exits at once.

Options:
  --env ENV            environment (environments/ENV.yaml)
  --listen HOST:PORT   SMTP address (default: orders.listen of the environment, else 127.0.0.1:10025)
  --health HOST:PORT   HTTP health endpoint, GET /health (default: 127.0.0.1, SMTP port + 1; "none")
  --spool DIR          spool directory (default: .wod/spool/ENV under the repository)
  --record-to DIR      record orders in DIR/orders.jsonl instead of the state store (tests, bench)
  --wake URL           after recording orders, POST this URL, e.g. http://127.0.0.1:10030/wake of
                       \`wod reconcile\` (default: orders.reconciler_wake; best effort; "none": off)
  --private DIR        private overlay checkout
  --hostname NAME      name in the SMTP greeting (default: the machine's host name)
  --max-connections N  concurrent SMTP connections (default 200)
  --max-size BYTES     message size limit (default 65536)
  --stop-grace SECONDS time for messages in progress at shutdown (default 5)
  --stop-timeout SECONDS  bound on the whole shutdown, drain included (default 20)
`;

function hostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`Invalid --${flag} "${text}": expected HOST:PORT`);
  return { host: m[1], port: Number(m[2]) };
}

function positiveInt(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]{0,9}$/.test(text)) {
    throw new UsageError(`Invalid --${flag} "${text}": expected a positive integer`);
  }
  return Number(text);
}

/** The HMAC key of signed orders, the STARTTLS certificate and SMTP AUTH, as the environment asks. */
async function listenerSecrets(root: string, env: EnvironmentEntry) {
  const orders = env.value.orders ?? {};
  let hmacKey: string | undefined;
  if (orders.hmac_secret_env) {
    hmacKey = Deno.env.get(orders.hmac_secret_env);
    if (!hmacKey) {
      throw new WodError(
        `Environment variable ${orders.hmac_secret_env} (orders.hmac_secret_env of ${env.file}) is not set: signed orders need the HMAC key`,
      );
    }
  }
  let tls: { cert: string; key: string } | undefined;
  if (orders.tls_cert_file || orders.tls_key_file) {
    if (!orders.tls_cert_file || !orders.tls_key_file) {
      throw new WodError(`orders.tls_cert_file and orders.tls_key_file of ${env.file} go together: set both`);
    }
    const read = async (f: string, what: string) => {
      try {
        return await Deno.readTextFile(resolve(root, f));
      } catch (e) {
        throw new WodError(`Cannot read the STARTTLS ${what} ${f} (orders of ${env.file})`, { cause: e });
      }
    };
    tls = {
      cert: await read(orders.tls_cert_file, "certificate"),
      key: await read(orders.tls_key_file, "key"),
    };
  }
  let auth: { user: string; password: string } | undefined;
  if (orders.auth_user || orders.auth_password_env) {
    const password = orders.auth_password_env ? Deno.env.get(orders.auth_password_env) : undefined;
    if (!orders.auth_user || !password) {
      throw new WodError(
        `SMTP AUTH of ${env.file} needs orders.auth_user and the password in the environment variable named by orders.auth_password_env${
          orders.auth_password_env ? ` (${orders.auth_password_env} is not set)` : ""
        }`,
      );
    }
    if (!tls) {
      throw new WodError(
        `SMTP AUTH of ${env.file} needs STARTTLS: set orders.tls_cert_file and tls_key_file`,
      );
    }
    auth = { user: orders.auth_user, password };
  }
  return { hmacKey, tls, auth };
}

/** Where accepted orders go: a folder (--record-to), workflow dispatches (orders.dispatch), or the state store. */
async function orderSink(
  o: {
    cfg: Config;
    envName: string;
    env: EnvironmentEntry;
    root: string;
    privateDir?: string;
    spoolDir: string;
    log: LogFn;
  },
  recordTo: string | undefined,
): Promise<OrderSink> {
  const { cfg, envName, env, root, privateDir, spoolDir, log } = o;
  const orders = env.value.orders ?? {};
  if (recordTo) return new DirSink(recordTo);
  else if (orders.dispatch) {
    // orders.dispatch: one workflow_dispatch per order (GITHUB_API_URL, GITHUB_TOKEN, repository).
    const repo = env.value.state?.github_repo ?? Deno.env.get("GITHUB_REPOSITORY");
    const token = Deno.env.get("GITHUB_TOKEN");
    if (!repo) {
      throw new WodError(
        `Environment "${envName}" drains orders into workflow_dispatch (orders.dispatch) but names no repository: set state.github_repo in ${env.file} or GITHUB_REPOSITORY`,
      );
    }
    if (!token) throw new WodError("orders.dispatch needs GITHUB_TOKEN (a token allowed to run workflows)");
    await Deno.mkdir(spoolDir, { recursive: true, mode: 0o700 });
    return new DispatchSink({
      baseUrl: Deno.env.get("GITHUB_API_URL") ?? "https://api.github.com",
      token,
      repo,
      workflow: Deno.env.get("WOD_ORDER_WORKFLOW") ?? "order.yml",
      ref: Deno.env.get("GITHUB_REF_NAME") ?? "main",
      recipients: env.value.seal?.recipients ?? [],
      dir: spoolDir,
      log,
    });
  }
  const { openStore } = await import("../state/store.ts");
  return await openStore(root, envName, { config: cfg, privateDir });
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("listen", args, {
    env: { type: "string" },
    listen: { type: "string" },
    health: { type: "string" },
    spool: { type: "string" },
    "record-to": { type: "string" },
    wake: { type: "string" },
    private: { type: "string" },
    hostname: { type: "string" },
    "max-connections": { type: "string" },
    "max-size": { type: "string" },
    "stop-grace": { type: "string" },
    "stop-timeout": { type: "string" },
  });
  const envName = requireOption("listen", values.env, "env");
  const root = repoRoot();
  const privateDir = values.private as string | undefined;
  const cfg = await loadConfig(root, { privateDir });
  throwOnConfigErrors(cfg.diagnostics);
  const env = requireEnvironment(cfg, envName);
  const orders = env.value.orders ?? {};
  const listen = hostPort(values.listen ?? orders.listen ?? "127.0.0.1:10025", "listen");
  // The health endpoint stays on loopback unless asked otherwise (it shows counters and errors).
  const healthText = values.health ?? `127.0.0.1:${listen.port === 0 ? 0 : listen.port + 1}`;
  const health = healthText === "none" ? undefined : hostPort(healthText, "health");
  const { hmacKey, tls, auth } = await listenerSecrets(root, env);
  const spoolDir = values.spool ?? join(root, ".wod", "spool", envName);
  const log = createLogger();
  let sink = await orderSink({ cfg, envName, env, root, privateDir, spoolDir, log }, values["record-to"]);
  const wake = values.wake ?? orders.reconciler_wake;
  if (wake && wake !== "none" && !orders.dispatch) {
    if (!/^https?:\/\//.test(wake)) throw new UsageError(`Invalid --wake "${wake}": expected an http:// URL`);
    sink = wakingSink(sink, wake, log);
  }
  const listener = await startListener({
    cfg,
    env: envName,
    host: listen.host,
    port: listen.port,
    health,
    spoolDir,
    sink,
    hmacKey,
    tls,
    auth,
    requireAuth: orders.require_auth ?? false,
    hostname: values.hostname ?? Deno.hostname(),
    limits: {
      ...(values["max-connections"]
        ? { maxConnections: positiveInt(values["max-connections"], "max-connections") }
        : {}),
      ...(values["max-size"] ? { maxMessageBytes: positiveInt(values["max-size"], "max-size") } : {}),
    },
    stopGraceMs: (positiveInt(values["stop-grace"], "stop-grace") ?? 5) * 1000,
    log,
  });
  const stopTimeoutMs = (positiveInt(values["stop-timeout"], "stop-timeout") ?? 20) * 1000;
  const done = Promise.withResolvers<void>();
  let signals = 0;
  const stop = () => {
    if (++signals > 1) {
      // A second signal: exit now (accepted orders are safe in the spool).
      log("stopped", { forced: true, spool_depth: listener.spool.depth });
      log.flush();
      Deno.exit(1);
    }
    done.resolve();
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  await done.promise;
  const timer = setTimeout(() => {
    log("stop-timeout", {
      after_s: stopTimeoutMs / 1000,
      spool_depth: listener.spool.depth,
      note: "orders left in the spool are drained at the next start",
    });
    log.flush();
    Deno.exit(1);
  }, stopTimeoutMs);
  await listener.close();
  if ("close" in sink && typeof (sink as { close?: unknown }).close === "function") {
    await (sink as unknown as { close(): Promise<void> }).close();
  }
  clearTimeout(timer);
  Deno.removeSignalListener("SIGTERM", stop);
  Deno.removeSignalListener("SIGINT", stop);
  log.flush();
  return 0;
}
