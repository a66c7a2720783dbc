// A throwaway PostgreSQL server for tests and benches: Debian's PostgreSQL binaries (package
// `postgresql`), a fresh cluster in a temporary directory owned by the `postgres` user, listening on a
// free loopback port, started as a child process (so it is stopped by its own PID) and deleted after.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { WodError } from "../common/errors.ts";
import { exec, spawn } from "../common/exec.ts";
import { freePort } from "../common/net.ts";

export const PG_BIN = Deno.env.get("WOD_PG_BIN") ?? "/usr/lib/postgresql/15/bin";

export interface TestPostgres {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

/** Why a throwaway server cannot run here (undefined: it can). */
export function postgresUnavailable(): string | undefined {
  if (Deno.build.os !== "linux") return "PostgreSQL tests run on Linux only";
  if (Deno.uid() !== 0) return "starting a PostgreSQL cluster as the postgres user needs root";
  if (!existsSync(join(PG_BIN, "initdb"))) {
    return `no ${PG_BIN}/initdb: install the Debian package postgresql`;
  }
  return undefined;
}

const AS_POSTGRES = ["--reuid=postgres", "--regid=postgres", "--init-groups", "--"];

export async function startTestPostgres(): Promise<TestPostgres> {
  const why = postgresUnavailable();
  if (why) throw new WodError(`Cannot start a test PostgreSQL server: ${why}`);
  const dir = await Deno.makeTempDir({ prefix: "wod-pg-" });
  const data = join(dir, "data");
  const uid = Number((await exec("id", ["-u", "postgres"])).stdout.trim());
  await Deno.chown(dir, uid, null);
  await Deno.chmod(dir, 0o700);
  const init = await exec("setpriv", [
    ...AS_POSTGRES,
    join(PG_BIN, "initdb"),
    "-D",
    data,
    "-U",
    "postgres",
    "--auth=trust",
    "--encoding=UTF8",
    "--no-instructions",
  ], { allowFailure: true });
  if (init.code !== 0) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new WodError(`initdb failed: ${init.stderr.slice(-500)}`);
  }
  const port = freePort();
  const child = spawn("setpriv", [
    ...AS_POSTGRES,
    join(PG_BIN, "postgres"),
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    dir,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "fsync=off",
    "-c",
    "max_connections=100",
  ], { stdout: "null" });
  const errText = (async () => {
    const chunks: string[] = [];
    const dec = new TextDecoder();
    for await (const c of child.stderr) chunks.push(dec.decode(c));
    return chunks.join("");
  })();
  const stop = async () => {
    try {
      child.kill("SIGINT"); // fast shutdown
    } catch { /* already gone */ }
    await child.status;
    await errText;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 30_000;
  while (true) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      // Accepting TCP is not yet accepting queries: ask pg_isready.
      const ready = await exec(join(PG_BIN, "pg_isready"), [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-U",
        "postgres",
      ], {
        allowFailure: true,
      });
      if (ready.code === 0) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new WodError(
        `The test PostgreSQL server did not start on 127.0.0.1:${port}: ${(await errText).slice(-500)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, dir, stop };
}

/** A fresh database on the server (tests keep apart by database). */
export async function createDatabase(pg: TestPostgres, name: string): Promise<string> {
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new WodError(`Invalid test database name "${name}"`);
  const r = await exec(join(PG_BIN, "createdb"), [
    "-h",
    "127.0.0.1",
    "-p",
    String(pg.port),
    "-U",
    "postgres",
    name,
  ], {
    allowFailure: true,
  });
  if (r.code !== 0) throw new WodError(`createdb ${name} failed: ${r.stderr}`);
  return `postgres://postgres@127.0.0.1:${pg.port}/${name}`;
}
