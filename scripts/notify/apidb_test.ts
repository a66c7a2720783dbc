// Our files are the source of the workshop settings the original front end (wod-api-db) keeps a copy
// of: the export writes its rows, and the diff names every difference with what a front end serves.
// The front end here is scripts/testing/frontend_server.ts (the api-db's login + GET /workshops).
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../common/assert.ts";
import { loadConfig } from "../config/load.ts";
import { edit, runWod, withFixture } from "../config/testing.ts";
import { startFrontendServer } from "../testing/frontend_server.ts";
import { apiDbRows, apiDbSql, compareApiDbWorkshops, formatFrontendDrift, frontendDrift } from "./apidb.ts";
import { ApiDbSim } from "../testing/apidb_sim.ts";

Deno.test("api-db export: one location per backend and one workshop row per workshop with seats", async () => {
  await withFixture(async (root) => {
    const rows = apiDbRows(await loadConfig(root), "test");
    assertEquals(rows.locations, [
      { name: "127.0.0.1", basestdid: 0, proto: "http", port: "80" },
      { name: "127.0.0.2", basestdid: 100, proto: "http", port: "80" },
    ]);
    assertEquals(
      rows.workshops.map((w) => [w.notebook, w.range, w.capacity, w.location, w.alternateLocation]),
      [
        ["WKSHP-Alpha", [1, 10], 15, "127.0.0.1", ["127.0.0.2"]],
        ["WKSHP-Beta", [11, 20], 10, "127.0.0.1", []],
      ],
    );
    // Alpha's second range differs: the api-db cannot hold it, and the export says so.
    assertEquals(rows.warnings.length, 1);
    assertMatch(rows.warnings[0], /WKSHP-Alpha has range \[1, 10\] on b1 and \[1, 5\] on b2/);
  });
});

Deno.test("api-db export as SQL quotes every value and upserts by notebook and location name", async () => {
  await withFixture(async (root) => {
    await edit(root, "workshops/WKSHP-Beta/workshop.yaml", "title: Beta", "title: Bob's Beta");
    const sql = apiDbSql(apiDbRows(await loadConfig(root), "test"));
    assertStringIncludes(sql, "name = 'Bob''s Beta'");
    assertStringIncludes(sql, "range = ARRAY[11, 20]::integer[]");
    assertStringIncludes(sql, `"alternateLocation" = ARRAY[]::varchar[]`);
    assertStringIncludes(sql, "WHERE NOT EXISTS (SELECT 1 FROM workshops WHERE notebook = 'WKSHP-Beta')");
    assert(sql.trimEnd().endsWith("COMMIT;"));
  });
});

Deno.test("api-db diff names a missing row, an unknown active workshop and each differing field", async () => {
  await withFixture(async (root) => {
    const rows = apiDbRows(await loadConfig(root), "test");
    const diffs = compareApiDbWorkshops(rows, [
      { id: 1, notebook: "WKSHP-Alpha", capacity: 20, range: [1, 10], reset: true, location: "127.0.0.1" },
      { id: 2, notebook: "WKSHP-Gone", active: true, capacity: 5, range: [30, 35] },
      { id: 3, notebook: "WKSHP-Old", active: false },
    ]);
    assertEquals(diffs.map((d) => `${d.notebook} ${d.field}`), [
      "WKSHP-Alpha capacity",
      "WKSHP-Alpha reset",
      "WKSHP-Beta *",
      "WKSHP-Gone *",
    ]);
    assertEquals(
      diffs[0].message,
      "Workshop WKSHP-Alpha: capacity is 15 in our files but 20 in the front end",
    );
    assertMatch(
      diffs[2].message,
      /WKSHP-Beta has seats in environment test but the front end has no workshop row/,
    );
    assertMatch(
      diffs[3].message,
      /front end offers workshop WKSHP-Gone \(active\).*its orders would be refused/,
    );
  });
});

Deno.test("wod frontend diff logs in to the front end, lists the differences and exits 2", async () => {
  const fe = await startFrontendServer();
  try {
    fe.workshops.push(
      { id: 1, notebook: "WKSHP-Alpha", name: "Alpha", reset: false, capacity: 15, range: [1, 10] },
      { id: 2, notebook: "WKSHP-Beta", name: "Beta", reset: true, capacity: 10, range: [11, 20] },
    );
    await withFixture(async (root) => {
      await edit(
        root,
        "environments/test.yaml",
        "timing:",
        `frontend:\n  api_url: ${fe.url}\ntiming:`,
      );
      const env = { WOD_FRONTEND_USER: fe.username, WOD_FRONTEND_PASSWORD: fe.password };
      const res = await runWod(root, ["frontend", "diff", "--env", "test"], env);
      assertEquals(res.code, 2, res.stderr);
      assertEquals(
        res.stdout.trim(),
        "Workshop WKSHP-Beta: reset is false in our files but true in the front end",
      );
      assert(fe.calls.some((c) => c.method === "GET" && c.path === "/workshops" && c.status === 200));
      fe.workshops[1].reset = false;
      const again = await runWod(root, ["frontend", "diff", "--env", "test"], env);
      assertEquals(again.code, 0, again.stderr);
      assertStringIncludes(again.stdout, "match environment test");
    });
  } finally {
    await fe.close();
  }
});

Deno.test("wod drift's front-end part: the api-db's GET /api/workshops against the environment, every difference named", async () => {
  // The api-db stand-in serves its workshops table as the original does (GET /api/workshops).
  const sim = await new ApiDbSim({ orderPort: 9, woduser: "wodadmin", sender: "api@front.test" }).start();
  try {
    await withFixture(async (root) => {
      assertEquals(
        await frontendDrift(await loadConfig(root), "test"),
        undefined,
        "no front end: nothing to do",
      );
      await edit(root, "environments/test.yaml", "timing:", `frontend:\n  api_url: ${sim.url}/api\ntiming:`);
      const cfg = await loadConfig(root);
      const rows = apiDbRows(cfg, "test");
      const beta = rows.workshops.find((w) => w.notebook === "WKSHP-Beta")!;
      sim.addWorkshop({ ...beta, reset: true, duration: 2 });
      sim.addWorkshop({
        name: "Gone",
        notebook: "WKSHP-Gone",
        capacity: 5,
        range: [30, 35],
        reset: false,
        location: "127.0.0.1",
        duration: 2,
      });
      const getenv = (k: string) =>
        ({ WOD_FRONTEND_USER: sim.username, WOD_FRONTEND_PASSWORD: sim.password })[k];
      const d = (await frontendDrift(cfg, "test", getenv))!;
      assertEquals(d.url, `${sim.url}/api/workshops`);
      assertEquals(d.differences.map((x) => `${x.notebook} ${x.field}`), [
        "WKSHP-Alpha *",
        "WKSHP-Beta reset",
        "WKSHP-Beta duration",
        "WKSHP-Gone *",
      ]);
      const text = formatFrontendDrift("test", d, "text");
      assertMatch(
        text,
        /^frontend: Workshop WKSHP-Alpha has seats in environment test but the front end has no workshop row/,
      );
      assertStringIncludes(
        text,
        "frontend: Workshop WKSHP-Beta: duration is 4 in our files but 2 in the front end",
      );
      assertStringIncludes(
        formatFrontendDrift("test", d, "markdown"),
        "| WKSHP-Beta | reset | false | true |",
      );
      assert(sim.calls.some((c) => c.method === "GET" && c.path === "/workshops" && c.status === 200));
      // A front end that refuses the login is one difference, not a crash of the drift run.
      const bad = (await frontendDrift(cfg, "test", (k) => (k === "WOD_FRONTEND_USER" ? "x" : "y")))!;
      assertEquals(bad.differences.length, 1);
      assertMatch(
        bad.differences[0].message,
        /Cannot compare the workshops with the front end .*answered 401/,
      );
    });
  } finally {
    await sim.close();
  }
});
