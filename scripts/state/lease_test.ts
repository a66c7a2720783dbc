// The per-environment lease over a real git remote, each holder with its own clone (as two machines
// would be): one winner when two take it at once, refusal naming the holder, takeover after expiry,
// renewal, release only by the holder.
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { stateFixture } from "../testing/state_fixture.ts";
import { openStore } from "./store.ts";
import { acquireLease, environmentLease, LeaseHeldError, readLease } from "./lease.ts";

Deno.test("lease: of two holders taking it at once exactly one wins, the other is refused with the holder named", async () => {
  const fx = await stateFixture();
  const a = await openStore(fx.root, "local");
  const b = await openStore(fx.root, "local");
  try {
    const results = await Promise.allSettled([
      acquireLease(a, { holder: "runner-a", purpose: "apply local" }),
      acquireLease(b, { holder: "runner-b", purpose: "apply local" }),
    ]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    assertEquals([won.length, lost.length], [1, 1]);
    assert(lost[0].reason instanceof LeaseHeldError, String(lost[0].reason));
    assertMatch(lost[0].reason.message, /Environment "local" is leased by runner-[ab] \(apply local\)/);
    const rec = await readLease(a);
    const winner = rec!.holder;
    // Released by its holder: the other one can take it now.
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLease>>>).value.release();
    assertEquals(await readLease(b), undefined);
    const second = await acquireLease(winner === "runner-a" ? b : a, { holder: "runner-c" });
    assertEquals((await readLease(a))?.holder, "runner-c");
    await second.release();
  } finally {
    await a.close();
    await b.close();
    await fx.cleanup();
  }
});

Deno.test("lease: an expired lease is taken over; a live one is renewed by its holder and kept", async () => {
  const fx = await stateFixture();
  const a = await openStore(fx.root, "local");
  const b = await openStore(fx.root, "local");
  let clock = Date.parse("2026-01-01T10:00:00Z");
  const now = () => clock;
  try {
    const gone = await acquireLease(a, { holder: "crashed-run", ttlMs: 60_000, now });
    // Still valid 30 s later: refused.
    clock += 30_000;
    let refused = false;
    await acquireLease(b, { holder: "next-run", ttlMs: 60_000, now }).catch((e) =>
      refused = e instanceof LeaseHeldError
    );
    assert(refused, "a live lease was taken over");
    // The holder never renews (it crashed); after expiry another run takes it over.
    clock += 40_000;
    const next = await acquireLease(b, { holder: "next-run", ttlMs: 60_000, now });
    assertEquals((await readLease(a))?.holder, "next-run");
    // The crashed run's release must not drop the new holder's lease.
    await gone.release();
    assertEquals((await readLease(a))?.holder, "next-run");
    await next.release();

    // Renewal in the background keeps a lease alive past its first expiry.
    const live = await acquireLease(a, { holder: "long-run", ttlMs: 3000 });
    const first = (await readLease(b))!.expires;
    await new Promise((r) => setTimeout(r, 2500));
    const renewed = (await readLease(b))!.expires;
    assert(Date.parse(renewed) > Date.parse(first), `not renewed: ${first} -> ${renewed}`);
    await live.release();
    assertEquals(await readLease(b), undefined);
  } finally {
    await a.close();
    await b.close();
    await fx.cleanup();
  }
});

Deno.test("lease for a long-running holder: acquire answers false while another holds it, renews its own, and a wod apply is refused meanwhile", async () => {
  const fx = await stateFixture();
  const a = await openStore(fx.root, "local");
  const b = await openStore(fx.root, "local");
  try {
    const reconciler = environmentLease(a, { holder: "reconciler-1" });
    const other = environmentLease(b, { holder: "reconciler-2" });
    assertEquals(await reconciler.acquire(60_000), true);
    const first = (await reconciler.describe())!;
    assertEquals(first.holder, "reconciler-1");
    assertEquals(await other.acquire(60_000), false);
    let refused = false;
    await acquireLease(b, { holder: "wod apply" }).catch((e) => refused = e instanceof LeaseHeldError);
    assert(refused, "wod apply took a lease the reconciler holds");
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(await reconciler.acquire(60_000), true, "renewal by the holder");
    assert(Date.parse((await other.describe())!.expires) > Date.parse(first.expires), "not renewed");
    await other.release(); // not its lease: nothing happens
    assertEquals((await reconciler.describe())?.holder, "reconciler-1");
    await reconciler.release();
    assertEquals(await other.describe(), undefined);
    assertEquals(await other.acquire(60_000), true);
    await other.release();
  } finally {
    await a.close();
    await b.close();
    await fx.cleanup();
  }
});
