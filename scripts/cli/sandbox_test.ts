// wod sandbox: status JSON of the shared sandbox, and a clear error when debootstrap is missing.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../common/assert.ts";
import { ensureSandbox } from "../backend/sandbox.ts";
import { hubFetch } from "../backend/hub.ts";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";

const WOD = new URL("../wod.ts", import.meta.url).pathname;
const isRoot = Deno.uid() === 0;

async function wod(args: string[], env: Record<string, string> = {}) {
  const out = await exec(Deno.execPath(), ["run", "-A", WOD, ...args], {
    env,
    inherit: DENO_CHILD_INHERIT,
    allowFailure: true,
  });
  return { code: out.code, stdout: out.stdout, stderr: out.stderr };
}

Deno.test({
  name: "wod sandbox status prints ssh_port, ssh_key and hub_url of the running sandbox",
  ignore: !isRoot,
  async fn() {
    const info = await ensureSandbox();
    const r = await wod(["sandbox", "status"]);
    assertEquals(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assertEquals(j.running, true);
    assertEquals(j.ssh_port, info.ssh_port);
    assertEquals(j.hub_url, info.hub_url);
    assert((await Deno.stat(j.ssh_key)).isFile);
    assertStringIncludes(await Deno.readTextFile(j.known_hosts), `[127.0.0.1]:${j.ssh_port} ssh-ed25519 `);
    const hub = await hubFetch(`${j.hub_url}/hub/api/`);
    assertEquals(hub.status, 200);
    await hub.body?.cancel();
  },
});

Deno.test({
  name: "wod sandbox up says debootstrap is missing when it must build the image without it",
  ignore: !isRoot,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "wod-sandbox-test-" });
    try {
      const r = await wod(["sandbox", "up"], {
        WOD_SANDBOX_DIR: join(tmp, "state"),
        WOD_SANDBOX_CACHE: join(tmp, "cache"),
        PATH: "/nonexistent",
      });
      assertEquals(r.code, 1);
      assertStringIncludes(r.stderr, "debootstrap is not installed");
      assertEquals(r.stdout, "");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("wod sandbox rejects an unknown action", async () => {
  const r = await wod(["sandbox", "sideways"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, 'Unknown sandbox action "sideways"');
});
