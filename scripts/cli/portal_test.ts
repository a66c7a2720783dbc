// `wod portal` as a process: --help, a clear error without the HMAC key of signed orders, first start
// (SQLite file and secret created under .wod/portal/ENV, mode 0600), /health, stop on SIGTERM;
// --hash-password.
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../common/assert.ts";
import { freePort } from "../common/net.ts";
import { DENO_CHILD_INHERIT, spawn } from "../common/exec.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const WOD = join(REPO, "scripts", "wod.ts");

function env(format: string): string {
  return `name: t
backends:
  - name: b1
    host: 127.0.0.1
    students: [1, 10]
    ranges:
      WKSHP-Test: [1, 5]
orders:
  listen: 127.0.0.1:1
  senders: [portal@front.test]
mail:
  smtp_host: 127.0.0.1
  smtp_port: 1
portal:
  order_format: ${format}
`;
}

async function root(format: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wod-portal-cli-" });
  await Deno.mkdir(join(dir, "environments"));
  await Deno.writeTextFile(join(dir, "environments", "t.yaml"), env(format));
  await Deno.mkdir(join(dir, "workshops", "WKSHP-Test"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "workshops", "WKSHP-Test", "workshop.yaml"),
    "id: WKSHP-Test\ntitle: Test\nduration: 2\n",
  );
  return dir;
}

/** The CLI as a child with piped output (`.output()` for its whole run, or the child itself to talk to). */
function wod(dir: string, args: string[], stdin: "null" | "piped" = "null") {
  const child = () =>
    spawn(Deno.execPath(), ["run", "-A", "--config", join(REPO, "deno.json"), WOD, ...args], {
      env: { WOD_ROOT: dir, NO_COLOR: "1" },
      inherit: DENO_CHILD_INHERIT,
      stdin,
    });
  return { spawn: child, output: () => child().output() };
}

Deno.test("wod portal --help describes the command and its settings", async () => {
  const r = await wod(REPO, ["portal", "--help"]).output();
  assertEquals(r.code, 0);
  const text = new TextDecoder().decode(r.stdout);
  assertStringIncludes(text, "Usage: deno task wod portal --env ENV");
  assertStringIncludes(text, "--hash-password");
});

Deno.test("wod portal refuses to start with signed orders and no HMAC key, and says what to set", async () => {
  const dir = await root("signed");
  try {
    const r = await wod(dir, ["portal", "--env", "t", "--listen", "127.0.0.1:0"]).output();
    assertEquals(r.code, 1);
    assertMatch(new TextDecoder().decode(r.stderr), /sends signed orders: set orders\.hmac_secret_env/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "wod portal creates its SQLite database and secret on first start, answers /health, stops on SIGTERM",
  sanitizeResources: false,
  fn: async () => {
    const dir = await root("original");
    const port = freePort();
    const child = wod(dir, ["portal", "--env", "t", "--listen", `127.0.0.1:${port}`]).spawn();
    try {
      let health: Record<string, unknown> | undefined;
      for (let i = 0; i < 200 && !health; i++) {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/health`);
          health = await r.json();
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assertEquals(health, { ok: true, store: "sqlite" }, `health: ${JSON.stringify(health)}`);
      for (const f of ["portal.sqlite", "secret"]) {
        const st = await Deno.stat(join(dir, ".wod", "portal", "t", f));
        assertEquals(st.mode! & 0o777, 0o600, `${f} is private`);
      }
      child.kill("SIGTERM");
      const out = await child.output();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      assertStringIncludes(new TextDecoder().decode(out.stdout), '"event":"listening"');
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* stopped */ }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("wod portal --hash-password prints a scrypt hash of stdin and refuses short passwords", async () => {
  const run = async (pw: string) => {
    const c = wod(REPO, ["portal", "--hash-password"], "piped").spawn();
    const w = c.stdin.getWriter();
    await w.write(new TextEncoder().encode(pw + "\n"));
    await w.close();
    return await c.output();
  };
  const ok = await run("a long admin password");
  assertEquals(ok.code, 0);
  assertMatch(
    new TextDecoder().decode(ok.stdout).trim(),
    /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/,
  );
  const short = await run("short");
  assertEquals(short.code, 1);
  assert(new TextDecoder().decode(short.stderr).includes("at least 12 characters"));
});
