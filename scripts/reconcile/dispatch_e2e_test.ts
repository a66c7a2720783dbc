// Acceptance: the dispatched CREATE delivers the credentials email. The listener runs in dispatch mode
// (orders.dispatch) as a process and turns the original front end's raw bytes into a
// workflow_dispatch call to the local GitHub test server (which checks every request against GitHub's
// OpenAPI description: GitHub itself cannot be reached from here); the dispatched inputs then run the
// real order.yml through the local workflow runner (record job: `wod order` with the sealed email;
// apply job: `wod apply` on the real sandbox backend), and the SMTP sink catches the credentials email,
// whose password logs in to the hub. Seat 102 of the shared sandbox (docs/testbed.md).
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { assert, assertEquals } from "../common/assert.ts";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";
import { startSmtpSink } from "../testing/smtp_sink.ts";
import { GithubServer } from "../testing/github_server.ts";
import { newIdentity } from "../state/seal.ts";
import { sendOriginalOrder } from "../orders/send.ts";
import { freePort, sleep, spawnDetached, stopProcess } from "../demo/procs.ts";
import { runWorkflow } from "../workflows/runner.ts";
import { cloneWorkingTree, commitAll } from "../workflows/workspace.ts";
import { HubSession } from "../backend/hub.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SEAT = 102;
const haveBackend = await Deno.stat(new URL("../backend/sandbox.ts", import.meta.url)).then(
  () => true,
  () => false,
);

Deno.test({
  name:
    "dispatch mode: a raw CREATE becomes a workflow_dispatch, order.yml records and applies it, the credentials email arrives",
  ignore: !haveBackend,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { ensureSandbox } = await import("../backend/sandbox.ts");
    const sandbox = await ensureSandbox();
    const dir = await Deno.makeTempDir({ prefix: "wod-dispatch-e2e-" });
    const sink = await startSmtpSink(join(dir, "mail"));
    const gh = await new GithubServer({ token: "test-token-not-a-secret" }).start();
    gh.createRepo("wod/wod", { workflows: ["order.yml"] });
    const { identity, recipient } = await newIdentity();
    const listenPort = freePort(true);
    const ws = join(dir, "ws");
    let listener;
    try {
      await cloneWorkingTree(ROOT, ws);
      const envFile = join(ws, "environments/local.yaml");
      const env = parse(await Deno.readTextFile(envFile)) as Record<string, unknown> & {
        backends: { ranges: Record<string, [number, number]> }[];
        orders: Record<string, unknown>;
      };
      env.backends[0].ranges["WKSHP-Shell101"] = [SEAT, SEAT];
      env.orders = { ...env.orders, listen: `127.0.0.1:${listenPort}`, dispatch: true };
      env.mail = {
        from: "wod@localhost",
        smtp_host: "127.0.0.1",
        smtp_port: sink.port,
        send_credentials: true,
      };
      env.seal = { recipients: [recipient] };
      await Deno.writeTextFile(envFile, stringify(env));
      const sha = await commitAll(ws, "seat 102, dispatch mode, the SMTP sink");

      listener = spawnDetached("listener", [
        Deno.execPath(),
        "run",
        "-A",
        join(ws, "scripts/wod.ts"),
        "listen",
        "--env",
        "local",
        "--health",
        "none",
        "--spool",
        join(dir, "spool"),
      ], {
        log: join(dir, "listener.log"),
        cwd: ws,
        env: {
          WOD_ROOT: ws,
          GITHUB_API_URL: gh.url,
          GITHUB_TOKEN: "test-token-not-a-secret",
          GITHUB_REPOSITORY: "wod/wod",
          WOD_ORDER_WORKFLOW: "order.yml",
        },
      });
      const deadline = Date.now() + 60_000;
      for (;;) {
        const sent = await sendOriginalOrder(listenPort, {
          helo: "api-db.localhost",
          from: "wodadmin@localhost",
          to: "wodadmin@localhost",
          subject: `CREATE ${SEAT} 9102 p102@example.org`,
          body: "WKSHP-Shell101",
        }).catch(() => undefined);
        if (sent) break;
        assert(Date.now() < deadline, "the listener did not start");
        await sleep(250);
      }
      for (let i = 0; gh.dispatches.length === 0; i++) {
        assert(
          i < 240,
          `no workflow_dispatch arrived: ${await Deno.readTextFile(join(dir, "listener.log"))}`,
        );
        await sleep(250);
      }
      const d = gh.dispatches[0];
      assertEquals([d.repo, d.workflow], ["wod/wod", "order.yml"]);
      assert(typeof d.inputs.email_sealed === "string", "the dispatch carries the sealed email");
      assert(!JSON.stringify(d.inputs).includes("p102@example.org"), "the email travels in plain text");

      const lines: string[] = [];
      const res = await runWorkflow({
        workflow: join(ws, ".github/workflows/order.yml"),
        workspace: ws,
        tempDir: join(dir, "run"),
        sha,
        actor: "wod-listener",
        event: { name: "workflow_dispatch", payload: { inputs: d.inputs } },
        secrets: { WOD_AGE_IDENTITY: identity },
        log: (l) => lines.push(l),
      });
      for (const job of ["record", "apply"]) {
        assertEquals(res.jobs.find((j) => j.id === job)?.result, "success", lines.join("\n"));
      }
      const mail = await sink.waitFor(
        (m) => m.to.includes("p102@example.org") && /Password:/.test(m.text),
        30_000,
      );
      const password = /Password:\s*(\S+)/.exec(mail.text)![1];
      const loggedIn = await new HubSession(sandbox.hub_url, `student${SEAT}`).login(password);
      assert(loggedIn, "the emailed password does not log in");
      assert(!lines.join("\n").includes(password), "the password is in the workflow log");
    } finally {
      if (listener) await stopProcess(listener, 20_000).catch(() => {});
      // Leave the seat free.
      const wod = (args: string[]) =>
        exec(Deno.execPath(), ["run", "-A", join(ws, "scripts/wod.ts"), ...args], {
          env: { WOD_ROOT: ws, NO_COLOR: "1", WOD_AGE_IDENTITY: identity },
          inherit: DENO_CHILD_INHERIT,
          allowFailure: true,
        });
      await wod(["order", "purge", "--env", "local", "--workshop", "WKSHP-Shell101", "--seat", String(SEAT)]);
      await wod(["apply", "--env", "local"]);
      await gh.close();
      await sink.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
