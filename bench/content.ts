// test-workshop on the sandbox: the wall time of `wod test-workshop WKSHP-Shell101` (both modes, seat
// CREATE and CLEANUP included) and the per-cell overhead of its notebook phase over a bare execution
// of the same cells in the same run (baseline: one kernel per notebook started by POST /api/kernels,
// the cells sent over its websocket, nothing else: no login, token, contents, session or report).
// Prints `test_workshop_shell101_s`, `bare_cells_s`, `test_workshop_cells_s`, `cell_overhead_ms` (the
// notebook phase's extra time per cell: login, token, server check, contents, sessions) and
// `cell_exec_overhead_ms` (median execution time of a cell inside test-workshop minus the bare one),
// medians of ROUNDS. Seats 100-102 of the shared sandbox (scripts/content/testing.ts).
import { ensureSandbox } from "../scripts/backend/sandbox.ts";
import { HubClient } from "../scripts/backend/hub.ts";
import { runSeatTasks } from "../scripts/backend/seats.ts";
import { loadConfig } from "../scripts/config/load.ts";
import { JupyterServer } from "../scripts/content/kernel.ts";
import { type Notebook, orderNotebooks, sourceOf } from "../scripts/content/notebook.ts";
import { testWorkshops } from "../scripts/content/runner.ts";
import { repoCopy } from "../scripts/content/testing.ts";

const ROUNDS = Number(Deno.env.get("WOD_BENCH_ROUNDS") ?? 3);
const W = "WKSHP-Shell101";
const BARE_SEAT = 100;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const info = await ensureSandbox((l) => console.error(l));
const root = await repoCopy();
const hub = await HubClient.fromTokenFile(info.hub_url, info.hub_token_file);

/** Bare: the notebooks' code cells on a seat created here, one plain kernel per notebook. */
async function bare(): Promise<{ seconds: number; cells: number; cellMs: number[] }> {
  const [c] = await runSeatTasks({
    config: await loadConfig(root),
    env: "local",
    backend: "jup1",
    tasks: [{ action: "CREATE", workshop: W, seat: BARE_SEAT }],
  });
  if (!c.ok) throw new Error(`CREATE of seat ${BARE_SEAT} failed: ${c.error}`);
  const user = `student${BARE_SEAT}`;
  try {
    await hub.requestServerStart(user);
    const tok = await hub.request<{ id: string; token: string }>("POST", `/users/${user}/tokens`, {
      note: "wod bench",
      expires_in: 600,
    });
    const server = new JupyterServer(`${info.hub_url}/user/${user}`, tok.body.token);
    await server.waitReady(60_000);
    const paths = orderNotebooks((await server.notebooks(W)).map((p) => p.slice(W.length + 1)));
    const sources: string[][] = [];
    for (const p of paths) {
      const nb = (await server.contents(`${W}/${p}`)).content as Notebook;
      sources.push(nb.cells.filter((c) => c.cell_type === "code").map(sourceOf).filter((s) => s.trim()));
    }
    let cells = 0;
    const cellMs: number[] = [];
    const t0 = performance.now();
    for (const src of sources) {
      if (src.length === 0) continue;
      const k = await server.request<{ id: string }>("POST", "/kernels", { name: "python3" });
      const ch = await server.connect(k.body.id);
      for (const s of src) {
        const r = await ch.execute(s, 60_000);
        if (r.status !== "ok") throw new Error(`bare execution failed: ${r.error?.ename} ${r.error?.evalue}`);
        cellMs.push(r.ms);
        cells++;
      }
      ch.close();
      await server.request("DELETE", `/kernels/${k.body.id}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    await hub.request("DELETE", `/users/${user}/tokens/${tok.body.id}`);
    return { seconds, cells, cellMs };
  } finally {
    await runSeatTasks({
      config: await loadConfig(root),
      env: "local",
      backend: "jup1",
      tasks: [{ action: "CLEANUP", workshop: W, seat: BARE_SEAT }],
    });
  }
}

const total: number[] = [];
const bareS: number[] = [];
const twS: number[] = [];
const overhead: number[] = [];
const execOverhead: number[] = [];
try {
  for (let i = 0; i < ROUNDS; i++) {
    const b = await bare();
    const t0 = performance.now();
    const results = await testWorkshops({ root, env: "local", workshops: [W] });
    total.push((performance.now() - t0) / 1000);
    const bad = results.filter((r) => !r.ok);
    if (bad.length) throw new Error(`test-workshop ${W} failed: ${JSON.stringify(bad[0].failures)}`);
    // The notebook phase of the normal mode: login, token, server, contents, sessions, cells.
    const normal = results.find((r) => r.mode === "WKSHP")!;
    if (normal.counts.run !== b.cells) throw new Error(`cells differ: ${normal.counts.run} vs ${b.cells}`);
    bareS.push(b.seconds);
    twS.push(normal.seconds);
    overhead.push(((normal.seconds - b.seconds) * 1000) / b.cells);
    const twCellMs = normal.notebooks.flatMap((n) =>
      n.cells.filter((c) => c.status === "passed").map((c) => c.ms)
    );
    execOverhead.push(median(twCellMs) - median(b.cellMs));
    console.error(
      `round ${i + 1}: total ${total.at(-1)!.toFixed(1)} s, notebooks ${normal.seconds.toFixed(2)} s, ` +
        `bare ${b.seconds.toFixed(2)} s, ${b.cells} cells`,
    );
  }
} finally {
  await Deno.remove(root, { recursive: true });
}
console.log(`test_workshop_shell101_s: ${median(total).toFixed(1)} s`);
console.log(`test_workshop_cells_s: ${median(twS).toFixed(2)} s`);
console.log(`bare_cells_s: ${median(bareS).toFixed(2)} s`);
console.log(`cell_overhead_ms: ${median(overhead).toFixed(0)} ms`);
console.log(`cell_exec_overhead_ms: ${median(execOverhead).toFixed(1)} ms`);
