// Hostile content on the real sandbox: a notebook that tries every route from a template to the
// controller's environment (lookups, filters, Jinja2 globals, Python internals). `wod validate` refuses
// each one at its file:line:col; a CREATE of that workshop fails alone, before anything is deployed,
// while a clean workshop's seat in the same run is created; no canary secret of this process reaches
// any file of the backend.
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { loadConfig } from "../config/load.ts";
import { lintConfig } from "../config/lint.ts";
import { ensureSandbox, sandboxSsh } from "./sandbox.ts";
import { runSeatTasks } from "./seats.ts";
import { sandboxEnvYaml } from "../config/testing.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const isRoot = Deno.uid() === 0;
const CANARY = "canary-secret-b7e2";

const ATTACKS = [
  "{{ lookup('env','WOD_FRONTEND_PASSWORD') }} {{ lookup('pipe','id -un') }}",
  "{{ query('env', 'WOD_SMTP_PASSWORD') }}",
  "{{ lookup('file', '/proc/self/environ') }}",
  "{{ STDID | pipe }}",
  "{{ 'WOD_FRONTEND_PASSWORD' | env }}",
  "{{ self.__init__.__globals__ }}",
  "{{ self._TemplateReference__context }}",
  "{{ cycler.__init__.__globals__.os.environ }}",
  "{{ joiner.__init__.__globals__ }}",
  "{{ namespace.__init__.__globals__ }}",
  "{{ lipsum.__globals__['os'].environ }}",
  "{{ config }}",
  "{{ environment }}",
  "{{ ansible_env }}",
  "{{ hostvars['localhost'] }}",
  "{{ BRANDING.__class__.__mro__ }}",
  "{{ BRANDING | attr('__class__') }}",
  "{% for k in range(3) %}{{ k }}{% endfor %}",
  "{% include '/proc/self/environ' %}",
];

function notebook(lines: string[]): string {
  const nb = {
    cells: [{ cell_type: "markdown", metadata: {}, source: lines.map((l) => `${l}\n`) }],
    metadata: {},
    nbformat: 4,
    nbformat_minor: 5,
  };
  return JSON.stringify(nb, null, 1) + "\n";
}

async function fixtureRepo(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "wod-seats-template-test-" });
  for (const id of ["WKSHP-Shell101", "WKSHP-Attack101"]) {
    await Deno.mkdir(join(root, "workshops", id), { recursive: true });
    for (const e of Deno.readDirSync(join(REPO, "workshops/WKSHP-Shell101"))) {
      if (e.isFile) {
        await Deno.copyFile(
          join(REPO, "workshops/WKSHP-Shell101", e.name),
          join(root, "workshops", id, e.name),
        );
      }
    }
  }
  const ws = join(root, "workshops/WKSHP-Attack101/workshop.yaml");
  await Deno.writeTextFile(ws, (await Deno.readTextFile(ws)).replace(/^id: .*$/m, "id: WKSHP-Attack101"));
  await Deno.writeTextFile(join(root, "workshops/WKSHP-Attack101/attack.ipynb"), notebook(ATTACKS));
  await Deno.mkdir(join(root, "environments"));
  await Deno.writeTextFile(
    join(root, "environments/local.yaml"),
    sandboxEnvYaml({ "WKSHP-Shell101": [41, 50], "WKSHP-Attack101": [51, 60] }, {
      BRANDING: "wod",
      BRANDINGWOD: "Workshops-on-Demand",
      BRANDINGURL: "http://localhost",
      SURVEYURL: "http://localhost/survey",
    }),
  );
  return root;
}

Deno.test({
  name: "a notebook trying every route to the controller's secrets is refused by validate and never deployed",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const secrets = ["WOD_FRONTEND_PASSWORD", "WOD_SMTP_PASSWORD", "WOD_AGE_IDENTITY", "GITHUB_TOKEN"];
    for (const s of secrets) Deno.env.set(s, `${CANARY}-${s}`);
    const root = await fixtureRepo();
    const info = await ensureSandbox();
    try {
      await t.step("validate refuses every attack at its line and column, and nothing else", async () => {
        const diags = await lintConfig(await loadConfig(root));
        const errors = diags.filter((d) => d.severity === "error");
        assert(errors.every((d) => d.file.endsWith("WKSHP-Attack101/attack.ipynb")), JSON.stringify(errors));
        // Line 6 of the notebook holds the first attack (after the JSON header lines).
        const lines = new Set(errors.map((d) => d.line));
        assertEquals(
          lines.size,
          ATTACKS.length,
          errors.map((d) => `${d.line}:${d.col} ${d.message}`).join("\n"),
        );
        for (const d of errors) assert(d.col > 1, `no column for ${d.message}`);
      });

      await t.step(
        "CREATE: the hostile seat fails before deployment, the clean one in the same run works",
        async () => {
          const res = await runSeatTasks({
            config: await loadConfig(root),
            env: "local",
            backend: "jup1",
            startServers: false,
            tasks: [
              { action: "CREATE", workshop: "WKSHP-Attack101", seat: 51 },
              { action: "CREATE", workshop: "WKSHP-Shell101", seat: 41 },
            ],
          });
          assertEquals(res.map((r) => r.ok), [false, true], JSON.stringify(res.map((r) => r.error)));
          assertMatch(res[0].error!, /WKSHP-Attack101\/attack\.ipynb:\d+:\d+: Template uses/);
          assertEquals(res[0].password, undefined);
          const home = await sandboxSsh(info, ["ls", "-A", "/student/student51"]);
          assert(
            !home.stdout.includes("WKSHP-Attack101"),
            `the refused content was deployed: ${home.stdout}`,
          );
          const clean = await sandboxSsh(info, [
            "cat",
            "/student/student41/WKSHP-Shell101/0-ReadMeFirst.ipynb",
          ]);
          assertEquals(clean.code, 0, clean.stderr);
          assert(!clean.stdout.includes("{{"), "the clean notebook was not rendered");
        },
      );

      await t.step("no canary anywhere on the backend (homes, staging, logs)", async () => {
        const r = await sandboxSsh(info, [
          "grep",
          "-rlF",
          CANARY,
          "/student",
          "/var/lib/wod",
          "/var/log",
          "/tmp",
        ]);
        assertEquals(r.stdout.trim(), "", `canary found in: ${r.stdout}`);
      });
    } finally {
      for (const s of secrets) Deno.env.delete(s);
      await runSeatTasks({
        config: await loadConfig(root),
        env: "local",
        backend: "jup1",
        startServers: false,
        tasks: [41, 51].map((seat) => ({ action: "PURGE" as const, workshop: "WKSHP-Shell101", seat })),
      }).catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});
