// End to end on the local environment (seat 57 of the shared sandbox, the state area's 40-59 share):
// a local bare git remote, the real sandbox backend (ansible over SSH, JupyterHub 3.0 with PAM), the
// front-end API test server, an SMTP sink. order CREATE -> apply -> the front end gets the password
// and active, the participant email arrives -> the student logs in to the hub -> expire after the
// end -> apply -> the login is refused and the seat is free. No password in git, logs or output.
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { orderArgs, stateFixture, wod } from "../testing/state_fixture.ts";
import { startFrontendServer } from "../testing/frontend_server.ts";
import { startSmtpSink } from "../testing/smtp_sink.ts";
import { newIdentity } from "../state/seal.ts";

const SEAT = 57;
const seatsModule = new URL("../backend/seats.ts", import.meta.url);
const haveBackend = await Deno.stat(seatsModule).then(() => true, () => false);

/** The hub's login form (HubSession: with its XSRF token): a redirect with a session cookie when
 * accepted; 403 ("Invalid username or password") when refused. */
async function hubLogin(hubUrl: string, username: string, password: string): Promise<"accepted" | "refused"> {
  const { HubSession } = await import("../backend/hub.ts");
  const session = new HubSession(hubUrl, username);
  if (await session.login(password)) {
    if (!session.cookie("jupyterhub-session-id") && !session.cookie("jupyterhub-hub-login")) {
      throw new Error("The hub accepted the login without a session cookie");
    }
    return "accepted";
  }
  return "refused";
}

Deno.test({
  name:
    "e2e: order CREATE -> apply -> front end + email -> hub login -> expire -> apply -> login refused, seat free",
  ignore: !haveBackend,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { ensureSandbox } = await import("../backend/sandbox.ts");
    const sandbox = await ensureSandbox();
    const fe = await startFrontendServer();
    const mailDir = await Deno.makeTempDir({ prefix: "wod-e2e-mail-" });
    const sink = await startSmtpSink(mailDir);
    const { identity, recipient } = await newIdentity();
    const fx = await stateFixture({
      extra: {
        frontend: { api_url: fe.url, username_env: "WOD_E2E_FE_USER", password_env: "WOD_E2E_FE_PASS" },
        mail: { from: "wod@localhost", smtp_host: "127.0.0.1", smtp_port: sink.port, send_credentials: true },
        seal: { recipients: [recipient] },
      },
    });
    const env = { WOD_E2E_FE_USER: fe.username, WOD_E2E_FE_PASS: fe.password, WOD_AGE_IDENTITY: identity };
    const outputs: string[] = [];
    const cli = async (args: string[]) => {
      const r = await wod(fx.root, args, env);
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    try {
      const o = await cli(
        orderArgs(fx, "create", SEAT, "--customer", "901", "--email", "participant@example.org"),
      );
      assertEquals(o.code, 0, o.stderr);
      const a1 = await cli(["apply", "--env", fx.env]);
      assertEquals(a1.code, 0, `apply failed:\n${a1.stdout}\n${a1.stderr}`);

      const password = fe.students.get(String(SEAT))?.password;
      assert(typeof password === "string" && password.length >= 12, "the front end received no password");
      assertEquals(fe.customers.get("901"), { active: "true" });
      const mail = await sink.waitFor((m) => m.to.includes("participant@example.org"));
      assert(mail.text.includes(password) && mail.text.includes(`student${SEAT}`), "credentials email");
      assert(mail.text.includes(sandbox.hub_url), "the email names the hub URL");

      let st = JSON.parse((await cli(["state", "--env", fx.env, "--json"])).stdout);
      assertEquals([st.seats[0].seat, st.seats[0].status, st.seats[0].customer], [SEAT, "active", "901"]);
      // The credentials go out first, then apply asks the hub to start the server: poll the hub API.
      assertMatch(a1.stdout, /hub servers of 1 new seat\(s\) started in/);
      const { HubClient } = await import("../backend/hub.ts");
      const hub = await HubClient.fromTokenFile(sandbox.hub_url, sandbox.hub_token_file);
      const deadline = Date.now() + 60_000;
      while (!(await hub.serverRunning(`student${SEAT}`))) {
        assert(Date.now() < deadline, `the server of student${SEAT} was not started after apply`);
        await new Promise((r) => setTimeout(r, 500));
      }
      assertEquals(
        await hubLogin(sandbox.hub_url, `student${SEAT}`, password),
        "accepted",
        "the student cannot log in",
      );

      const after = new Date(Date.parse(st.seats[0].expires) + 60_000).toISOString();
      const e = await cli(["expire", "--env", fx.env, "--now", after]);
      assertEquals(e.code, 0, e.stderr);
      const a2 = await cli(["apply", "--env", fx.env]);
      assertEquals(a2.code, 0, `apply failed:\n${a2.stdout}\n${a2.stderr}`);

      assertEquals(
        await hubLogin(sandbox.hub_url, `student${SEAT}`, password),
        "refused",
        "the old password still works",
      );
      st = JSON.parse((await cli(["state", "--env", fx.env, "--json"])).stdout);
      assertEquals([st.seats[0].status, st.seats[0].customer, st.seats[0].pending], [
        "free",
        undefined,
        undefined,
      ]);
      assertEquals(fe.customers.get("901")?.active, "false");
      assertEquals(fe.customers.get("901")?.cleaned, "true");

      // No password (nor the plain email) in git history, logs or command output.
      const mirror = await Deno.makeTempDir();
      try {
        await exec("git", ["clone", "-q", "--mirror", fx.remote, mirror]);
        const history = (await exec("git", ["log", "--all", "-p", "--format=%H %B"], { cwd: mirror })).stdout;
        assert(history.length > 0);
        assert(!history.includes(password), "the password is in the git history");
        assert(!history.includes("participant@example.org"), "the email is in the git history in plain text");
      } finally {
        await Deno.remove(mirror, { recursive: true });
      }
      const later = fe.students.get(String(SEAT))?.password as string | undefined;
      for (const text of outputs) {
        assert(!text.includes(password), "a password is in the command output");
        if (later) assert(!text.includes(later), "the cleanup password is in the command output");
      }
    } finally {
      await sink.close();
      await fe.close();
      await Deno.remove(mailDir, { recursive: true });
      await fx.cleanup();
    }
  },
});

Deno.test({
  name:
    "e2e: two concurrent `wod apply` of one environment: one runs the seat, the other is refused by the lease; a crash before the commit does not wipe the participant's work",
  ignore: !haveBackend,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { ensureSandbox, sandboxSsh } = await import("../backend/sandbox.ts");
    const sandbox = await ensureSandbox();
    const fe = await startFrontendServer();
    const fx = await stateFixture({
      extra: {
        frontend: { api_url: fe.url, username_env: "WOD_E2E_FE_USER", password_env: "WOD_E2E_FE_PASS" },
      },
    });
    const env = { WOD_E2E_FE_USER: fe.username, WOD_E2E_FE_PASS: fe.password };
    const seat = 58;
    const work = `/student/student${seat}/WKSHP-Shell101/my-work.txt`;
    try {
      assertEquals((await wod(fx.root, orderArgs(fx, "create", seat, "--customer", "902"), env)).code, 0);
      const both = await Promise.all([
        wod(fx.root, ["apply", "--env", fx.env], env),
        wod(fx.root, ["apply", "--env", fx.env], env),
      ]);
      const codes = both.map((r) => r.code).sort();
      assertEquals(codes, [0, 1], both.map((r) => r.stdout + r.stderr).join("\n---\n"));
      const refused = both.find((r) => r.code === 1)!;
      assertMatch(refused.stderr, /Environment "local" is leased by .* \(apply local\)/);
      assert(!/CREATE 58 ok|jup1\/58 CREATE/.test(refused.stdout), "the refused apply ran the seat");
      const first = fe.students.get(String(seat))?.password as string;
      assert(first, "no password delivered");

      // The participant works; then an apply of a new CREATE of the same order crashes after the
      // credentials went out and before the commit (simulated: the commit fails).
      await sandboxSsh(sandbox, ["sh"], `runuser -u student${seat} -- sh -c 'echo mine > ${work}'\n`);
      const { openStore } = await import("../state/store.ts");
      const { apply } = await import("./apply.ts");
      const store = await openStore(fx.root, fx.env);
      try {
        // Make the seat pending again under the same order id, as if the commit of the first run
        // had never happened.
        const s = (await store.readSeats())[0];
        await store.updateSeats("test: undo the commit", () => [{
          ...s,
          status: "provisioning",
          pending: [{
            action: "CREATE",
            order: s.orders.at(-1)!,
            since: new Date().toISOString(),
            deliver: true,
          }],
        }]);
        const crashing = Object.create(store, {
          updateSeats: { value: () => Promise.reject(new Error("simulated crash before the commit")) },
        });
        await apply({
          root: fx.root,
          env: fx.env,
          store: crashing,
          getenv: (k) => env[k as keyof typeof env],
          log: () => {},
        })
          .catch(() => {});
        const second = fe.students.get(String(seat))?.password as string;
        assert(second && second !== first, "the crashed run delivered no new password");
        assertEquals((await sandboxSsh(sandbox, ["cat", work])).stdout.trim(), "mine", "the work is gone");
        // The next apply runs the same CREATE again: work kept, a new password delivered, committed.
        const r = await apply({
          root: fx.root,
          env: fx.env,
          store,
          getenv: (k) => env[k as keyof typeof env],
          log: () => {},
        });
        assertEquals(r.outcomes.map((o) => o.ok), [true]);
        assertEquals((await sandboxSsh(sandbox, ["cat", work])).stdout.trim(), "mine", "the work is gone");
        assertEquals((await store.readSeats())[0].status, "active");
        assert(fe.students.get(String(seat))?.password !== second);
      } finally {
        await store.close();
      }
      await wod(fx.root, orderArgs(fx, "purge", seat), env);
      await wod(fx.root, ["apply", "--env", fx.env], env);
    } finally {
      await fe.close();
      await fx.cleanup();
    }
  },
});
