// The registration portal under load, with SQLite and with PostgreSQL (a throwaway Debian PostgreSQL
// cluster): 1000 registrations from 20 concurrent clients (each GETs the workshop page for its CSRF
// token, then POSTs the form; every accepted registration also sends its welcome email to an SMTP
// sink and its signed order to the real listener), while a 21st client measures the catalog page.
// Baseline in the same run: the catalog's p95 with no load (same pacing). The catalog page is computed at
// most once a second, so both figures include cached and computed pages. Prints `name: value unit` lines.
import { Client, person, startBed } from "../scripts/portal/testing.ts";
import { createDatabase, postgresUnavailable, startTestPostgres } from "../scripts/portal/pg_testing.ts";

const N = Number(Deno.env.get("WOD_BENCH_REGISTRATIONS") ?? 1000);
const CLIENTS = 20;

function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))];
}

async function catalogMs(base: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${base}/`);
  await r.text();
  if (!r.ok) throw new Error(`GET / answered ${r.status}`);
  return performance.now() - t0;
}

async function run(kind: "sqlite" | "postgres", url?: string) {
  const bed = await startBed({ store: url ? { url } : "sqlite", seatsPerBackend: N / 2 + 10 });
  try {
    const base = bed.portal.url;
    const idle: number[] = [];
    for (let i = 0; i < 20; i++) await catalogMs(base); // warm-up
    for (let i = 0; i < 200; i++) {
      idle.push(await catalogMs(base));
      await new Promise((r) => setTimeout(r, 20));
    }
    let next = 0;
    let accepted = 0;
    let done = false;
    const busy: number[] = [];
    const prober = (async () => {
      // One catalog request every 20 ms: a visitor's latency, not a second load generator.
      while (!done) {
        busy.push(await catalogMs(base));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      const c = new Client(base);
      const csrf = await c.csrf("/workshops/WKSHP-Test");
      for (let i = next++; i < N; i = next++) {
        const r = await c.post("/register", { ...person(i), csrf });
        if (r.res.status === 303) accepted++;
        else throw new Error(`registration ${i} answered ${r.res.status}`);
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    done = true;
    await prober;
    if (accepted !== N) throw new Error(`${accepted} of ${N} registrations accepted`);
    console.log(`portal_registrations_per_s{store="${kind}"}: ${(N / seconds).toFixed(1)} registrations/s`);
    console.log(`portal_catalog_p95_ms{store="${kind}",load="none"}: ${p95(idle).toFixed(1)} ms`);
    console.log(
      `portal_catalog_p95_ms{store="${kind}",load="${CLIENTS} registering clients"}: ${
        p95(busy).toFixed(1)
      } ms (${busy.length} requests)`,
    );
    console.log(
      `portal_catalog_p95_ratio{store="${kind}"}: ${(p95(busy) / p95(idle)).toFixed(1)} x the idle p95`,
    );
  } finally {
    await bed.close();
  }
}

await run("sqlite");
const why = postgresUnavailable();
if (why) console.log(`portal_registrations_per_s{store="postgres"}: skipped (${why})`);
else {
  const pg = await startTestPostgres();
  try {
    await run("postgres", await createDatabase(pg, "bench"));
  } finally {
    await pg.stop();
  }
}
