// order.yml hands every input it declares to `wod order`: a dispatched CREATE with a sealed email
// (what `wod order --dispatch` and the listener's dispatch mode send) is recorded with that email, so
// apply can send the credentials email and expire the reminder. Runs the real workflow file through
// the local runner against a temp git copy of the repo; only the record job (no backend needed).
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { newIdentity, seal, unseal } from "../state/seal.ts";
import { runWorkflow } from "./runner.ts";
import { cloneWorkingTree } from "./workspace.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("order.yml records a dispatched CREATE with its sealed email", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-order-wf-test-" });
  try {
    const ws = join(dir, "ws");
    const sha = await cloneWorkingTree(ROOT, ws);
    const { identity, recipient } = await newIdentity();
    const sealed = await seal("pat@example.org", [recipient]);
    const lines: string[] = [];
    const res = await runWorkflow({
      workflow: join(ws, ".github/workflows/order.yml"),
      workspace: ws,
      tempDir: join(dir, "run"),
      sha,
      actor: "wod-listener",
      jobs: ["record"],
      event: {
        name: "workflow_dispatch",
        payload: {
          inputs: {
            env: "local",
            action: "CREATE",
            workshop: "WKSHP-Shell101",
            seat: "7",
            customer: "cust-7",
            id: "order-wf-sealed-1",
            email_sealed: sealed,
          },
        },
      },
      log: (l) => lines.push(l),
    });
    const record = res.jobs.find((j) => j.id === "record")!;
    assertEquals(record.result, "success", lines.join("\n"));
    // The seat file on the workspace's local state remote holds the sealed email, which opens.
    const seat = await exec("git", [
      "--git-dir",
      join(ws, ".wod/state/local.git"),
      "show",
      "state:state/local/jup1/7.json",
    ]);
    const rec = JSON.parse(seat.stdout) as { email_sealed?: string; customer?: string; status: string };
    assertEquals(rec.status, "provisioning");
    assertEquals(rec.customer, "cust-7");
    assert(rec.email_sealed, `the recorded seat has no email_sealed: ${seat.stdout}`);
    assertEquals(await unseal(rec.email_sealed, [identity]), "pat@example.org");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
