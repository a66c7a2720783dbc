// wod portal: the registration web application (runs until SIGTERM or SIGINT).
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError, WodError } from "../common/errors.ts";
import { loadConfig, requireEnvironment } from "../config/load.ts";
import { throwOnConfigErrors } from "../config/report.ts";

export const help = `
Usage: deno task wod portal --env ENV [--listen HOST:PORT] [--private DIR]
       deno task wod portal --hash-password   (reads a password on stdin, prints its hash)

The registration web application of environment ENV: the catalog (GET /), a page per workshop,
registration (POST /register), the participant's status page (the unguessable link of the welcome
email), the original api-db's callback API (POST /login, PUT /student/:id, PUT /customer/:id: point
frontend.api_url of the environment at the portal and \`wod apply\` reports to it; the portal then
emails the credentials), and the admin pages (/admin). Settings: the "portal" section of
environments/ENV.yaml (database sqlite or postgres, order_format signed or original, retention_days,
rate limits, admin_password_hash_env, secret_env). Logs are JSON lines on stdout, without names,
emails or passwords. Stops on SIGTERM/SIGINT.

Environment variables: the callback API's user and password (frontend.username_env / password_env,
default WOD_FRONTEND_USER, WOD_FRONTEND_PASSWORD), the HMAC key of signed orders
(orders.hmac_secret_env), the PostgreSQL URL (portal.database_url_env), the admin password hash
(portal.admin_password_hash_env), SMTP credentials (WOD_SMTP_USERNAME, WOD_SMTP_PASSWORD).

Options:
  --env ENV            environment (environments/ENV.yaml)
  --listen HOST:PORT   HTTP address (default: portal.listen, else 127.0.0.1:8088)
  --private DIR        private overlay checkout
  --data-dir DIR       SQLite database and signing secret (default: portal.data_dir, else .wod/portal/ENV)
  --hash-password      print the scrypt hash of the password given on stdin, for admin_password_hash_env
`;

function hostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`Invalid --listen "${text}": expected HOST:PORT`);
  return { host: m[1], port: Number(m[2]) };
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("portal", args, {
    env: { type: "string" },
    listen: { type: "string" },
    private: { type: "string" },
    "data-dir": { type: "string" },
    "hash-password": { type: "boolean" },
  });
  if (values["hash-password"]) {
    const { hashPassword } = await import("../portal/security.ts");
    const text = (await new Response(Deno.stdin.readable).text()).replace(/\r?\n$/, "");
    if (text.length < 12) throw new WodError("The admin password must have at least 12 characters");
    console.log(await hashPassword(text));
    return 0;
  }
  const envName = requireOption("portal", values.env, "env");
  const root = repoRoot();
  const privateDir = values.private as string | undefined;
  const cfg = await loadConfig(root, { privateDir });
  throwOnConfigErrors(cfg.diagnostics);
  const env = requireEnvironment(cfg, envName);
  const listen = hostPort(values.listen ?? env.value.portal?.listen ?? "127.0.0.1:8088");
  const done = Promise.withResolvers<void>();
  const stop = () => done.resolve();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  // Signals are handled before the server answers, so a stop during start-up is graceful too.
  const { startPortal } = await import("../portal/server.ts");
  const running = await startPortal({
    root,
    cfg,
    env: envName,
    privateDir,
    host: listen.host,
    port: listen.port,
    dataDir: values["data-dir"] as string | undefined,
  });
  console.log(JSON.stringify({ event: "listening", url: running.url, store: running.store.kind }));
  await done.promise;
  Deno.removeSignalListener("SIGTERM", stop);
  Deno.removeSignalListener("SIGINT", stop);
  await running.close();
  return 0;
}
