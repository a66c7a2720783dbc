// One order check for every entry: the same bad order (a CREATE for seat 99 of WKSHP-Test, outside its
// range [1, 20] on backend b1) is refused with the same sentence, validateOrder's, by the SMTP listener
// (both formats), by `wod order` (flags, --order-json, JSON on stdin) and by the portal before it sends
// an order. order.yml's refusal is checked in scripts/workflows/order_workflow_test.ts.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../common/assert.ts";
import { type Config, loadConfig } from "../config/load.ts";
import { makeRoot, sendMessage, startTestListener, TEST_KEY } from "../mail/testing.ts";
import { Portal } from "../portal/app.ts";
import type { OrderSender, PortalOrder } from "../portal/orders.ts";
import { openPortalStore } from "../portal/store.ts";
import { wod } from "../testing/state_fixture.ts";
import type { Order } from "./order.ts";
import { NATIVE_SUBJECT, nativeBody } from "./parse.ts";
import { orderProblem } from "./validate.ts";

const BAD: Order = {
  id: "c-entries-1",
  action: "CREATE",
  env: "t",
  backend: "b1",
  workshop: "WKSHP-Test",
  seats: [99, 99],
  customer: "c99",
  source: "mail",
  received: "2026-12-03T10:00:00.000Z",
};
const SENTENCE =
  'Seat 99 is outside the range [1, 20] of workshop "WKSHP-Test" on backend "b1" of environment "t": order seats inside that range';

async function withRoot(fn: (root: string, cfg: Config) => Promise<void>): Promise<void> {
  const root = await makeRoot();
  try {
    const cfg = await loadConfig(root);
    assertEquals(orderProblem(cfg, BAD), SENTENCE, "the sentence every entry must show");
    await fn(root, cfg);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("the SMTP listener refuses the bad order with validateOrder's sentence (original and signed formats)", async () => {
  const t = await startTestListener();
  try {
    const cfg = await loadConfig(t.root);
    assertEquals(orderProblem(cfg, BAD), SENTENCE);
    const original = await sendMessage(t.port, { message: "Subject: CREATE 99 c99 a@b.cd\nWKSHP-Test\n" });
    assertEquals([original.stage, original.code, original.text], ["end", 550, `5.6.0 ${SENTENCE}`]);
    const body = nativeBody(TEST_KEY, {
      action: "CREATE",
      env: "t",
      backend: "b1",
      workshop: "WKSHP-Test",
      seats: [99, 99],
      customer: "c99",
      ts: Math.floor(Date.now() / 1000),
    });
    const signed = await sendMessage(t.port, { message: `Subject: ${NATIVE_SUBJECT}\n\n${body}\n` });
    assertEquals([signed.stage, signed.code, signed.text], ["end", 550, `5.6.0 ${SENTENCE}`]);
    assertEquals(t.listener.stats.accepted, 0);
  } finally {
    await t.close();
  }
});

Deno.test("wod order refuses the bad order with validateOrder's sentence (flags, --order-json, JSON on stdin)", async () => {
  await withRoot(async (root) => {
    const flags = await wod(root, [
      "order",
      "create",
      "--env=t",
      "--workshop=WKSHP-Test",
      "--seat=99",
      "--backend=b1",
      "--customer=c99",
    ]);
    assertEquals(flags.code, 1, flags.stderr);
    assertStringIncludes(flags.stderr, `error: ${SENTENCE}\n`);
    const json = await wod(root, ["order", `--order-json=${JSON.stringify(BAD)}`]);
    assertEquals(json.code, 1, json.stderr);
    assertStringIncludes(json.stderr, `error: ${SENTENCE}\n`);
    const stdin = await exec(root, ["order", "create", "--order-json=-", "--env=t"], JSON.stringify(BAD));
    assertEquals(stdin.code, 1, stdin.stderr);
    assertStringIncludes(stdin.stderr, `error: ${SENTENCE}\n`);
  });
});

Deno.test("wod order --order-json refuses a flag that disagrees with the order, and bad JSON, saying which", async () => {
  await withRoot(async (root) => {
    const other = await wod(root, ["order", "reset", `--order-json=${JSON.stringify(BAD)}`]);
    assertEquals(other.code, 1);
    assertStringIncludes(
      other.stderr,
      "error: The action RESET disagrees with the order of --order-json (CREATE): give the same value or leave it out",
    );
    const broken = await wod(root, ["order", "--order-json={"]);
    assertEquals(broken.code, 1);
    assertStringIncludes(broken.stderr, "error: Invalid --order-json: not JSON");
    const dispatch = await wod(root, ["order", `--order-json=${JSON.stringify(BAD)}`, "--dispatch"]);
    assertEquals(dispatch.code, 1);
    assertStringIncludes(dispatch.stderr, "use one or the other");
  });
});

Deno.test("the portal refuses the bad order with validateOrder's sentence before sending it, and does not retry", async () => {
  await withRoot(async (root, cfg) => {
    const store = await openPortalStore({ kind: "sqlite", file: join(root, "portal.sqlite") });
    const sent: PortalOrder[] = [];
    const orders: OrderSender = { send: (o) => Promise.resolve(void sent.push(o)), close: () => {} };
    const portal = new Portal({
      cfg,
      env: "t",
      store,
      secret: "portal-secret-not-a-secret",
      publicUrl: "http://127.0.0.1:1",
      orders,
      orderFormat: "signed",
      mailer: { send: () => Promise.resolve() } as never,
      recordedSeats: () => Promise.resolve([]),
      hubUrl: () => Promise.resolve("http://127.0.0.1:1"),
      log: () => {},
    });
    try {
      // A registration on a seat outside the workshop's range (say, the ranges changed since).
      const now = new Date().toISOString();
      const reg = await store.register({
        workshop: "WKSHP-Test",
        email: "ada@example.org",
        firstName: "Ada",
        lastName: "Lovelace",
        company: "Engines",
        ranges: [{ backend: "b1", first: 99, last: 99 }],
        capacity: 10,
        recordedHeld: new Set(),
        tokenHash: "0".repeat(64),
        now,
        outbox: ["order-create"],
      });
      assert(reg.ok && reg.registration.seat === 99);
      await portal.drainOutbox();
      const [item] = await store.outbox({ registrationId: reg.registration.id });
      assertEquals(sent, [], "nothing was sent");
      assertEquals([item.status, item.lastError], ["failed", SENTENCE]);
    } finally {
      await store.close();
    }
  });
});

async function exec(root: string, args: string[], stdin: string) {
  const { exec: run, DENO_CHILD_INHERIT } = await import("../common/exec.ts");
  return await run(Deno.execPath(), ["run", "-A", new URL("../wod.ts", import.meta.url).pathname, ...args], {
    env: { WOD_ROOT: root, NO_COLOR: "1" },
    inherit: DENO_CHILD_INHERIT,
    allowFailure: true,
    stdin,
  });
}
