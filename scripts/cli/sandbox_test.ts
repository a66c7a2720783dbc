// wod sandbox: status JSON of the shared sandbox, and a clear error when debootstrap is missing.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../common/assert.ts";
import { ensureSandbox, ensureSandboxHosts, localSandboxBackends } from "../backend/sandbox.ts";
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
  name: "wod sandbox status lists every backend of local, the first one's keys also at the top level",
  ignore: !isRoot,
  async fn() {
    const info = await ensureSandbox();
    const all = await ensureSandboxHosts();
    const r = await wod(["sandbox", "status"]);
    assertEquals(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assertEquals(j.running, true);
    assertEquals(j.backends.map((b: { name: string }) => b.name), localSandboxBackends().map((b) => b.name));
    assert(j.backends.length >= 2, "local has fewer than two sandbox backends");
    assertEquals([j.name, j.host, j.ssh_port, j.hub_url], [
      info.name,
      info.host,
      info.ssh_port,
      info.hub_url,
    ]);
    assertEquals(new Set(all.map((h) => h.host)).size, all.length, "two hosts share an address");
    for (const b of j.backends) {
      for (const k of ["name", "host", "ssh_port", "ssh_user", "ssh_key", "hub_url"]) {
        assert(k in b, `${k} missing`);
      }
      assertEquals([b.ssh_port, b.ssh_user], [22, "wod"]);
      assert((await Deno.stat(b.ssh_key)).isFile);
      assertStringIncludes(await Deno.readTextFile(b.known_hosts), `\n${b.host} ssh-ed25519 `.slice(1));
      const hub = await hubFetch(`${b.hub_url}/hub/api/`);
      assertEquals(hub.status, 200, `${b.name}: hub at ${b.hub_url}`);
      await hub.body?.cancel();
    }
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
