// One contract for the portal's storage, run against both implementations: SQLite (a file in a temp
// dir) and PostgreSQL (a throwaway Debian PostgreSQL 15 cluster on a free loopback port, see
// pg_testing.ts; skipped with the reason when it cannot run).
import { join } from "node:path";
import { existsSync } from "node:fs";
import { assert, assertEquals } from "../common/assert.ts";
import {
  chooseSeat,
  openPortalStore,
  type PortalStore,
  type RegisterRequest,
  type SeatRange,
} from "./store.ts";
import { createDatabase, postgresUnavailable, startTestPostgres, type TestPostgres } from "./pg_testing.ts";

const NOW = "2026-12-01T10:00:00.000Z";
let dbCount = 0;

interface Impl {
  name: string;
  ignore?: string;
  /** A fresh store and a way to open a second connection/instance on the same data. */
  open(): Promise<{ store: PortalStore; again: () => Promise<PortalStore>; cleanup: () => Promise<void> }>;
}

let pg: TestPostgres | undefined;
const pgWhy = postgresUnavailable();

const IMPLS: Impl[] = [
  {
    name: "sqlite",
    async open() {
      const dir = await Deno.makeTempDir({ prefix: "wod-portal-store-" });
      const file = join(dir, "data", "portal.sqlite");
      const store = await openPortalStore({ kind: "sqlite", file });
      return {
        store,
        again: () => openPortalStore({ kind: "sqlite", file }),
        cleanup: () => Deno.remove(dir, { recursive: true }),
      };
    },
  },
  {
    name: "postgres",
    ignore: pgWhy,
    async open() {
      pg ??= await startTestPostgres();
      const url = await createDatabase(pg, `contract_${++dbCount}_${Date.now() % 100000}`);
      const store = await openPortalStore({ kind: "postgres", url });
      return {
        store,
        again: () => openPortalStore({ kind: "postgres", url }),
        cleanup: () => Promise.resolve(),
      };
    },
  },
];

function req(email: string, ranges: SeatRange[], extra: Partial<RegisterRequest> = {}): RegisterRequest {
  return {
    workshop: "WKSHP-Shell101",
    email,
    firstName: "Ada",
    lastName: "Lovelace",
    company: "Analytical",
    ranges,
    capacity: 1000,
    recordedHeld: new Set(),
    tokenHash: crypto.randomUUID(),
    now: NOW,
    outbox: ["order-create", "welcome"],
    ...extra,
  };
}

Deno.test("chooseSeat spreads over backends, skips held seats and stops at the capacity", () => {
  const ranges = [{ backend: "a", first: 1, last: 3 }, { backend: "b", first: 11, last: 14 }];
  assertEquals(chooseSeat(ranges, new Set(), 10), { backend: "b", seat: 11 });
  assertEquals(chooseSeat(ranges, new Set(["b/11", "b/12"]), 10), { backend: "a", seat: 1 });
  assertEquals(chooseSeat(ranges, new Set(["b/11"]), 1), undefined);
  assertEquals(
    chooseSeat(ranges, new Set(["a/1", "a/2", "a/3", "b/11", "b/12", "b/13", "b/14"]), 10),
    undefined,
  );
});

for (const impl of IMPLS) {
  const t = (name: string, fn: (s: PortalStore, again: () => Promise<PortalStore>) => Promise<void>) =>
    Deno.test({
      name: `portal store (${impl.name}): ${name}`,
      ignore: impl.ignore !== undefined,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async () => {
        const { store, again, cleanup } = await impl.open();
        try {
          await fn(store, again);
        } finally {
          await store.close();
          await cleanup();
        }
      },
    });

  t("a second open finds the schema migrated and the data kept", async (store, again) => {
    const r = await store.register(req("a@example.org", [{ backend: "jup1", first: 1, last: 5 }]));
    assert(r.ok);
    const s2 = await again();
    try {
      const rows = await s2.db.all("SELECT version FROM schema_migrations ORDER BY version");
      assertEquals(rows.map((x) => Number(x.version)), [1, 2, 3]);
      assertEquals((await s2.list()).length, 1);
    } finally {
      await s2.close();
    }
  });

  t("seats spread over backends and never one recorded state holds", async (store) => {
    const ranges = [{ backend: "jup1", first: 1, last: 4 }, { backend: "jup2", first: 1, last: 4 }];
    const held = new Set(["jup1/1", "jup2/1"]);
    const got: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await store.register(req(`p${i}@example.org`, ranges, { recordedHeld: held }));
      assert(r.ok, `registration ${i} refused`);
      got.push(`${r.registration.backend}/${r.registration.seat}`);
    }
    assertEquals(got.sort(), ["jup1/2", "jup1/3", "jup1/4", "jup2/2", "jup2/3", "jup2/4"]);
    const r = await store.register(req("late@example.org", ranges, { recordedHeld: held }));
    assertEquals(r, { ok: false, reason: "full" });
  });

  t(
    "one active registration per email and workshop; after it ended, a new one is accepted",
    async (store) => {
      const ranges = [{ backend: "jup1", first: 1, last: 5 }];
      const a = await store.register(req("Same@Example.org", ranges));
      assert(a.ok);
      assertEquals(await store.register(req("same@example.org", ranges)), { ok: false, reason: "duplicate" });
      const other = await store.register(req("same@example.org", ranges, { workshop: "WKSHP-Other" }));
      assert(
        !other.ok || other.registration.seat !== a.registration.seat,
        "another workshop shares the seat",
      );
      assert(await store.setStatus(a.registration.id, "ended", NOW));
      const again = await store.register(req("same@example.org", ranges));
      assert(again.ok, "registration after the first ended was refused");
    },
  );

  t("the capacity caps the seats given even when the ranges are larger", async (store) => {
    const ranges = [{ backend: "jup1", first: 1, last: 10 }];
    const ok = [];
    for (let i = 0; i < 5; i++) {
      const r = await store.register(req(`c${i}@example.org`, ranges, { capacity: 3 }));
      if (r.ok) ok.push(r.registration.seat);
      else assertEquals(r.reason, "full");
    }
    assertEquals(ok, [1, 2, 3]);
  });

  t(
    "200 concurrent registrations (two connections) for 30 free seats: exactly 30 accepted, seats unique",
    async (
      store,
      again,
    ) => {
      const second = await again();
      try {
        const ranges = [{ backend: "jup1", first: 1, last: 20 }, { backend: "jup2", first: 1, last: 20 }];
        // 10 seats are held by recorded state: 30 free.
        const held = new Set([
          "jup1/1",
          "jup1/2",
          "jup1/3",
          "jup1/4",
          "jup1/5",
          "jup2/1",
          "jup2/2",
          "jup2/3",
          "jup2/4",
          "jup2/5",
        ]);
        const results = await Promise.all(
          Array.from(
            { length: 200 },
            (_, i) =>
              (i % 2 ? second : store).register(req(`u${i}@example.org`, ranges, { recordedHeld: held })),
          ),
        );
        const accepted = results.filter((r) => r.ok);
        assertEquals(accepted.length, 30);
        assertEquals(results.filter((r) => !r.ok && r.reason === "full").length, 170);
        const seats = accepted.map((r) => r.ok ? `${r.registration.backend}/${r.registration.seat}` : "");
        assertEquals(new Set(seats).size, 30, "a seat was given twice");
        for (const s of seats) assert(!held.has(s), `seat ${s} held by recorded state was given`);
        const orders = (await store.outbox()).filter((o) => o.kind === "order-create");
        assertEquals(orders.length, 30, "one order per accepted registration");
      } finally {
        await second.close();
      }
    },
  );

  t("concurrent claims of one outbox item: exactly one wins", async (store, again) => {
    const r = await store.register(req("o@example.org", [{ backend: "jup1", first: 1, last: 2 }]));
    assert(r.ok);
    const [item] = (await store.outbox()).filter((o) => o.kind === "order-create");
    const second = await again();
    try {
      const wins = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? second : store).claim(item.id, NOW)),
      );
      assertEquals(wins.filter(Boolean).length, 1);
      await store.finish(item.id, false, "SMTP 451", NOW);
      assertEquals((await store.outbox({ status: ["failed"] })).map((o) => o.lastError), ["SMTP 451"]);
      assert(await store.retryFailed(item.id, NOW));
      assert(await store.claim(item.id, NOW), "a retried item can be claimed again");
    } finally {
      await second.close();
    }
  });

  t("retention deletes personal data of registrations ended before the cutoff only", async (store) => {
    const ranges = [{ backend: "jup1", first: 1, last: 5 }];
    const old = await store.register(req("old@example.org", ranges));
    const recent = await store.register(req("recent@example.org", ranges));
    const live = await store.register(req("live@example.org", ranges));
    assert(old.ok && recent.ok && live.ok);
    await store.setStatus(old.registration.id, "ended", "2026-10-01T00:00:00.000Z");
    await store.setStatus(recent.registration.id, "ended", "2026-11-30T00:00:00.000Z");
    assertEquals(await store.applyRetention("2026-11-01T00:00:00.000Z", NOW), 1);
    const o = await store.byId(old.registration.id);
    assertEquals([o?.email, o?.firstName, o?.lastName, o?.company], [null, null, null, null]);
    assertEquals((await store.byId(recent.registration.id))?.email, "recent@example.org");
    assertEquals((await store.byId(live.registration.id))?.email, "live@example.org");
  });

  t(
    "status changes: ready keeps the seat, ended frees it, a guarded change does not apply twice",
    async (store) => {
      const r = await store.register(req("s@example.org", [{ backend: "jup1", first: 7, last: 7 }]));
      assert(r.ok);
      const id = r.registration.id;
      assert(await store.setStatus(id, "ready", NOW, { from: ["preparing"] }));
      assert(!(await store.setStatus(id, "ready", NOW, { from: ["preparing"] })));
      assertEquals((await store.activeBySeat("jup1", 7))?.id, id);
      assert(await store.setStatus(id, "ended", NOW, { completion: 80 }));
      assertEquals(await store.activeBySeat("jup1", 7), undefined);
      assertEquals((await store.byId(id))?.completion, 80);
      assertEquals((await store.heldSeats()).size, 0);
    },
  );

  t("admin sessions expire", async (store) => {
    await store.createSession("h1", "admin", "2026-12-01T11:00:00.000Z");
    assertEquals(await store.session("h1", NOW), "admin");
    assertEquals(await store.session("h1", "2026-12-01T12:00:00.000Z"), undefined);
    await store.deleteSession("h1", NOW);
    assertEquals(await store.session("h1", NOW), undefined);
  });
}

Deno.test({
  name: "portal store: the SQLite file and its directory are created on first start, mode 0600",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "wod-portal-store-" });
    try {
      const file = join(dir, "nested", "portal.sqlite");
      const s = await openPortalStore({ kind: "sqlite", file });
      await s.close();
      assert(existsSync(file));
      assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// Last: stop the throwaway PostgreSQL server (by its PID) once every test above ran.
Deno.test({
  name: "portal store (postgres): the throwaway server stops",
  ignore: pgWhy !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    if (pg) await pg.stop();
    pg = undefined;
  },
});
