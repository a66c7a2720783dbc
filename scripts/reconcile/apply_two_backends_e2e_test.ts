// Two real backends in one `wod apply`: seat 113 of WKSHP-Shell101 ordered on jup1 and on jup2 (the two
// hosts of the sandbox, each in its own network namespace). One apply runs both backends, the front end
// gets each password under its own student id (jup2's shifted by its base_stdid), and each password
// opens its own host's hub only. Then PURGE on both, in one apply again.
import { assert, assertEquals, assertNotEquals } from "../common/assert.ts";
import { orderArgs, stateFixture, wod } from "../testing/state_fixture.ts";
import { startFrontendServer } from "../testing/frontend_server.ts";

const SEAT = 113;
const BASE2 = 120;
const isRoot = Deno.uid() === 0;

Deno.test({
  name:
    "one apply runs seats on two backends: each host gets its seat, the front end gets jup2's under seat + base_stdid",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { ensureSandboxHosts } = await import("../backend/sandbox.ts");
    const { HubSession } = await import("../backend/hub.ts");
    const hosts = await ensureSandboxHosts();
    assert(hosts.length >= 2, `the sandbox has ${hosts.length} host(s); local needs two`);
    const [h1, h2] = hosts;
    const fe = await startFrontendServer();
    const backend = (name: string, fqdn: string, base: number) => ({
      name,
      sandbox: true,
      fqdn,
      students: [1, 120] as [number, number],
      uid_base: 2000,
      base_stdid: base,
      ranges: { "WKSHP-Shell101": [SEAT, SEAT] as [number, number] },
    });
    const fx = await stateFixture({
      extra: {
        backends: [backend(h1.name, "localhost", 0), backend(h2.name, "jup2.localhost", BASE2)],
        frontend: { api_url: fe.url, username_env: "WOD_E2E_FE_USER", password_env: "WOD_E2E_FE_PASS" },
      },
    });
    const env = { WOD_E2E_FE_USER: fe.username, WOD_E2E_FE_PASS: fe.password };
    try {
      for (const [b, customer] of [[h1.name, "9131"], [h2.name, "9132"]]) {
        const o = await wod(fx.root, [
          ...orderArgs(fx, "create", SEAT, "--customer", customer),
          "--backend",
          b,
        ], env);
        assertEquals(o.code, 0, o.stderr);
      }
      const a1 = await wod(fx.root, ["apply", "--env", fx.env], env);
      assertEquals(a1.code, 0, `apply failed:\n${a1.stdout}\n${a1.stderr}`);

      const st = JSON.parse((await wod(fx.root, ["state", "--env", fx.env, "--json"])).stdout);
      assertEquals(
        st.seats.map((s: { backend: string; seat: number; status: string }) =>
          `${s.backend}/${s.seat} ${s.status}`
        )
          .sort(),
        [`${h1.name}/${SEAT} active`, `${h2.name}/${SEAT} active`],
      );
      const pw1 = fe.students.get(String(SEAT))?.password as string | undefined;
      const pw2 = fe.students.get(String(SEAT + BASE2))?.password as string | undefined;
      assert(pw1 && pw2, `the front end got ${[...fe.students.keys()].join(", ")}`);
      assertNotEquals(pw1, pw2);
      assertEquals(fe.customers.get("9131")?.active, "true");
      assertEquals(fe.customers.get("9132")?.active, "true");

      // Each password opens its own host's hub, not the other's: two hosts, not one.
      const user = `student${SEAT}`;
      assert(await new HubSession(h1.hub_url, user).login(pw1), "jup1 refused its password");
      assert(await new HubSession(h2.hub_url, user).login(pw2), "jup2 refused its password");
      assert(!await new HubSession(h2.hub_url, user).login(pw1), "jup2 took jup1's password");

      for (const b of [h1.name, h2.name]) {
        const o = await wod(fx.root, [...orderArgs(fx, "purge", SEAT), "--backend", b], env);
        assertEquals(o.code, 0, o.stderr);
      }
      const a2 = await wod(fx.root, ["apply", "--env", fx.env], env);
      assertEquals(a2.code, 0, `apply failed:\n${a2.stdout}\n${a2.stderr}`);
      assert(!await new HubSession(h2.hub_url, user).login(pw2), "jup2's seat kept its password after PURGE");
      const after = JSON.parse((await wod(fx.root, ["state", "--env", fx.env, "--json"])).stdout);
      assertEquals(after.seats.map((s: { status: string }) => s.status), ["free", "free"]);
    } finally {
      await fe.close();
      await fx.cleanup();
    }
  },
});
