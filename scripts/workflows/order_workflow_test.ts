// order.yml hands every input it declares to `wod order`: a dispatched CREATE with a sealed email
// (what `wod order --dispatch` and the listener's dispatch mode send) is recorded with that email, so
// apply can send the credentials email and expire the reminder; the whole order, handed over as JSON
// (`order`), is recorded as it was accepted (source, time, reason); a bad order is refused by `wod order`
// with validateOrder's sentence. Runs the real workflow file through the local runner against a temp git
// copy of the repo; only the record job (no backend needed).
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { loadConfig } from "../config/load.ts";
import { dispatchInputs } from "../mail/dispatch.ts";
import type { Order } from "../orders/order.ts";
import { orderProblem } from "../orders/validate.ts";
import { newIdentity, seal, unseal } from "../state/seal.ts";
import { type RunResult, runWorkflow } from "./runner.ts";
import { cloneWorkingTree } from "./workspace.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function runOrder(
  dir: string,
  inputs: Record<string, string>,
  ws?: { ws: string; sha: string },
): Promise<{ res: RunResult; lines: string[]; ws: string }> {
  const w = ws ?? { ws: join(dir, "ws"), sha: await cloneWorkingTree(ROOT, join(dir, "ws")) };
  const lines: string[] = [];
  const res = await runWorkflow({
    workflow: join(w.ws, ".github/workflows/order.yml"),
    workspace: w.ws,
    tempDir: join(dir, `run-${crypto.randomUUID().slice(0, 8)}`),
    sha: w.sha,
    actor: "wod-listener",
    jobs: ["record"],
    event: { name: "workflow_dispatch", payload: { inputs } },
    log: (l) => lines.push(l),
  });
  return { res, lines, ws: w.ws };
}

async function stateFile(ws: string, path: string): Promise<Record<string, unknown>> {
  const r = await exec("git", ["--git-dir", join(ws, ".wod/state/local.git"), "show", `state:${path}`]);
  return JSON.parse(r.stdout);
}

Deno.test("order.yml records a dispatched CREATE with its sealed email", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-order-wf-test-" });
  try {
    const { identity, recipient } = await newIdentity();
    const sealed = await seal("pat@example.org", [recipient]);
    const { res, lines, ws } = await runOrder(dir, {
      env: "local",
      action: "CREATE",
      workshop: "WKSHP-Shell101",
      seat: "7",
      customer: "cust-7",
      id: "order-wf-sealed-1",
      email_sealed: sealed,
    });
    const record = res.jobs.find((j) => j.id === "record")!;
    assertEquals(record.result, "success", lines.join("\n"));
    // The seat file on the workspace's local state remote holds the sealed email, which opens.
    const rec = await stateFile(ws, "state/local/jup1/7.json") as {
      email_sealed?: string;
      customer?: string;
      status: string;
    };
    assertEquals(rec.status, "provisioning");
    assertEquals(rec.customer, "cust-7");
    assert(rec.email_sealed, `the recorded seat has no email_sealed: ${JSON.stringify(rec)}`);
    assertEquals(await unseal(rec.email_sealed, [identity]), "pat@example.org");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("order.yml records the whole order handed over as JSON: source, time, reason and the sealed email", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-order-wf-test-" });
  try {
    const { identity, recipient } = await newIdentity();
    // What the listener accepted from an email (source mail, its time), dispatched as the listener does.
    const order: Order = {
      id: "m-0123456789abcdef0123456789abcdef01234567",
      action: "CREATE",
      env: "local",
      backend: "jup1",
      workshop: "WKSHP-Shell101",
      mode: "CHLG",
      seats: [8, 8],
      customer: "cust-8",
      email: "sam@example.org",
      source: "mail",
      received: "2026-12-03T09:00:00.000Z",
      reason: "front-end registration 8",
    };
    const inputs = await dispatchInputs(order, [recipient]);
    assertEquals(JSON.stringify(inputs).includes("sam@example.org"), false, "no plain email in the inputs");
    const { res, lines, ws } = await runOrder(dir, inputs);
    const record = res.jobs.find((j) => j.id === "record")!;
    assertEquals(record.result, "success", lines.join("\n"));
    assertEquals(record.outputs, { order: order.id });
    assertEquals(res.runName, `CREATE WKSHP-Shell101 seat 8 on local by wod-listener: ${order.id}`);
    const seat = await stateFile(ws, "state/local/jup1/8.json");
    assertEquals([seat.status, seat.customer, seat.mode], ["provisioning", "cust-8", "CHLG"]);
    assertEquals(await unseal(seat.email_sealed as string, [identity]), "sam@example.org");
    const ledger = await stateFile(ws, `state/local/orders/${order.id}.json`);
    assertEquals(
      [ledger.source, ledger.received, ledger.reason, ledger.outcome],
      ["mail", order.received, order.reason, "accepted"],
      "the order as accepted, not a new one made by the workflow",
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("order.yml refuses a bad JSON order with validateOrder's sentence, and a field that disagrees with it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-order-wf-test-" });
  try {
    const ws = join(dir, "ws");
    const sha = await cloneWorkingTree(ROOT, ws);
    const bad: Order = {
      id: "m-bad0000000000000000000000000000000000000",
      action: "CREATE",
      env: "local",
      backend: "jup1",
      workshop: "WKSHP-Shell101",
      seats: [9999, 9999],
      source: "mail",
      received: "2026-12-03T09:00:00.000Z",
    };
    const expected = orderProblem(await loadConfig(ws), bad);
    assert(expected, "the order is bad");
    const first = await runOrder(dir, await dispatchInputs(bad, []), { ws, sha });
    const step = first.res.jobs[0].steps.find((s) => s.id === "record")!;
    assertEquals(step.outcome, "failure");
    assertEquals(step.annotations[0].message, expected);
    // A good order whose seat input (in the run name) says another seat: refused, nothing recorded.
    const good = {
      ...bad,
      id: "m-good000000000000000000000000000000000000",
      seats: [9, 9] as [number, number],
    };
    const second = await runOrder(dir, { ...await dispatchInputs(good, []), seat: "10" }, { ws, sha });
    const step2 = second.res.jobs[0].steps.find((s) => s.id === "record")!;
    assertEquals(step2.outcome, "failure");
    assertEquals(
      step2.annotations[0].message,
      "--seat 10 disagrees with the order of --order-json (9): give the same value or leave it out",
    );
    const seat = await exec("git", [
      "--git-dir",
      join(ws, ".wod/state/local.git"),
      "show",
      "state:state/local/jup1/9.json",
    ], {
      allowFailure: true,
    });
    assert(seat.code !== 0, "nothing was recorded for seat 9");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
