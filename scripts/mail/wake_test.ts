// The listener's nudge to the reconciler: a batch with newly recorded orders POSTs the wake URL once;
// duplicates do not; a reconciler that is down never fails nor delays the recording.
import { assert, assertEquals } from "../common/assert.ts";
import { serveLoopback } from "../testing/serve.ts";
import type { Order } from "../config/types.gen.ts";
import { DirSink } from "./sink.ts";
import { wakingSink } from "./wake.ts";

const order = (id: string): Order => ({
  id,
  action: "CREATE",
  env: "local",
  backend: "jup1",
  workshop: "WKSHP-Shell101",
  seats: [40, 40],
  source: "mail",
  received: new Date().toISOString(),
});

Deno.test("listener nudge: recorded orders POST the reconciler's wake URL; duplicates do not; a dead reconciler fails nothing", async () => {
  const dir = await Deno.makeTempDir();
  const wakes: string[] = [];
  const { server, url } = await serveLoopback((req) => {
    wakes.push(`${req.method} ${new URL(req.url).pathname}`);
    return new Response(null, { status: 202 });
  });
  const events: string[] = [];
  try {
    const sink = wakingSink(new DirSink(dir), `${url}/wake`, (e) => events.push(e));
    assertEquals((await sink.recordOrders([order("a"), order("b")])).recorded, ["a", "b"]);
    for (let i = 0; i < 50 && wakes.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assertEquals(wakes, ["POST /wake"]);
    await sink.recordOrders([order("a")]);
    await new Promise((r) => setTimeout(r, 100));
    assertEquals(wakes.length, 1, "a batch of duplicates nudged the reconciler");

    const dead = wakingSink(new DirSink(dir), "http://127.0.0.1:9/wake", (e) => events.push(e));
    const t0 = performance.now();
    assertEquals((await dead.recordOrders([order("c")])).recorded, ["c"]);
    assert(performance.now() - t0 < 1_000, "the nudge delayed the recording");
    for (let i = 0; i < 100 && !events.includes("reconciler-wake-failed"); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert(events.includes("reconciler-wake-failed"), "the failed nudge is logged");
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
