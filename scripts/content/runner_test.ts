// wod test-workshop against the real sandbox backend (sshd, ansible-playbook, JupyterHub with PAM, real
// python3 kernels), through the real CLI in a temp repo copy. Seats 100-119 of the shared sandbox only
// (scripts/content/testing.ts). After every run the test seat must be clean: no server, an empty home,
// no API token left.
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../common/assert.ts";
import { DENO_CHILD_INHERIT, spawn } from "../common/exec.ts";
import { REPO_ROOT, runWod } from "../config/testing.ts";
import { ensureSandbox, type SandboxInfo, sandboxSsh } from "../backend/sandbox.ts";
import { HubClient } from "../backend/hub.ts";
import { addBrokenWorkshop, importCorpus, repoCopy } from "./testing.ts";

const isRoot = Deno.uid() === 0;

async function assertSeatClean(info: SandboxInfo, seat: number): Promise<void> {
  const hub = await HubClient.fromTokenFile(info.hub_url, info.hub_token_file);
  const user = `student${seat}`;
  let running = true;
  for (let i = 0; i < 40 && running; i++) {
    running = await hub.serverRunning(user);
    if (running) await new Promise((r) => setTimeout(r, 250));
  }
  assert(!running, `the server of ${user} still runs after test-workshop`);
  const ls = await sandboxSsh(info, ["ls", "-A", `/student/${user}`]);
  assertEquals(ls.stdout.split("\n").filter((x) => x), [], `the home of ${user} is not clean`);
  const tokens = await hub.request<{ api_tokens?: { note?: string }[] }>("GET", `/users/${user}/tokens`);
  assertEquals(
    (tokens.body.api_tokens ?? []).filter((t) => t.note === "wod test-workshop").length,
    0,
    `an API token of test-workshop is left for ${user}`,
  );
}

Deno.test({
  name: "the three example workshops pass in both modes and their test seats are cleaned up",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox();
    const root = await repoCopy();
    try {
      const r = await runWod(root, ["test-workshop", "--env", "local"]);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      for (const w of ["WKSHP-PyBasics101", "WKSHP-REST101", "WKSHP-Shell101"]) {
        assertStringIncludes(r.stdout, `PASS ${w} on jup1`);
        assertStringIncludes(r.stdout, `PASS ${w} (CHLG) on jup1`);
      }
      assertStringIncludes(r.stdout, "6 of 6 workshop run(s) passed");
      for (const seat of [101, 102, 104, 105, 107, 108]) await assertSeatClean(info, seat);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "a broken, a hanging and a changed checked cell and a missing kernel are reported at their place",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox();
    const root = await repoCopy();
    try {
      await addBrokenWorkshop(root);
      const r = await runWod(root, ["test-workshop", "WKSHP-Broken101", "--env", "local"]);
      assertEquals(r.code, 1, r.stdout + r.stderr);
      const nb = "workshops/WKSHP-Broken101/1-Cells.ipynb";
      const lines = r.stdout.split("\n");
      const at = (prefix: string) => {
        const i = lines.findIndex((l) => l.startsWith(prefix));
        assert(i >= 0, `no line starting with ${JSON.stringify(prefix)} in:\n${r.stdout}`);
        return i;
      };
      let i = at(`${nb}: cell 3 (line 2 of the cell): NameError: name 'undefined_name' is not defined`);
      assertEquals(lines[i + 1], "    > b = undefined_name + a");
      i = at(
        `${nb}: cell 4 (line 3 of the cell): Timeout: the cell did not finish within 3 s and was interrupted`,
      );
      assertEquals(lines[i + 1], "    > time.sleep(1)");
      at(
        `${nb}: cell 5: OutputChanged: output line 1 differs from the stored output (wod:check-output): ` +
          `expected "count: 2", got "count: 3"`,
      );
      at(
        'workshops/WKSHP-Broken101/2-Pwsh.ipynb: MissingKernel: the notebook names kernel "powershell" (PowerShell), ' +
          "which is not installed on backend jup1 (installed: ",
      );
      // Cells 2, 6 (skip), 7 (raises, expected) and 8 (checked, equal after normalisation) are not reported.
      for (const c of [2, 6, 7, 8]) assert(!r.stdout.includes(`${nb}: cell ${c} `), `cell ${c} reported`);
      assertStringIncludes(
        r.stdout,
        "FAIL WKSHP-Broken101 on jup1 seat 111: 7 cells run, 4 passed, 3 failed, 1 skipped, 1 not run in",
      );
      await assertSeatClean(info, 111);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "SIGTERM in the middle of a notebook stops the run and still cleans up the seat",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox();
    const root = await repoCopy();
    try {
      await addBrokenWorkshop(root, 600);
      const child = spawn(
        Deno.execPath(),
        [
          "run",
          "-A",
          "--quiet",
          "--config",
          join(REPO_ROOT, "deno.json"),
          join(REPO_ROOT, "scripts/wod.ts"),
          "test-workshop",
          "WKSHP-Broken101",
          "--env",
          "local",
        ],
        { cwd: root, env: { WOD_ROOT: root, NO_COLOR: "1" }, inherit: DENO_CHILD_INHERIT },
      );
      const stdout = new Response(child.stdout).text();
      let stderr = "";
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      const sawHang = (async () => {
        while (true) {
          const { value, done } = await reader.read();
          if (done) return false;
          stderr += value;
          if (stderr.includes("running 1-Cells.ipynb")) return true;
        }
      })();
      assert(await sawHang, `the run never reached 1-Cells.ipynb:\n${stderr}`);
      // Cell 4 sleeps for 600 s; give the kernel time to reach it.
      await new Promise((r) => setTimeout(r, 4_000));
      child.kill("SIGTERM");
      const rest = (async () => {
        while (true) {
          const { value, done } = await reader.read();
          if (done) return;
          stderr += value;
        }
      })();
      const status = await child.status;
      await rest;
      const out = await stdout;
      assertEquals(status.code, 143, out + stderr);
      assertStringIncludes(stderr, "SIGTERM: stopping the notebooks and cleaning up the test seats");
      assertStringIncludes(stderr, "cleaning up seats 111");
      assertStringIncludes(out, "FAIL WKSHP-Broken101 on jup1 seat 111");
      await assertSeatClean(info, 111);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "corpus workshops written for another backend are reported cell by cell: a kernel the backend lacks, input()",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox();
    const root = await repoCopy();
    try {
      const imp = await importCorpus(root, ["WKSHP-API101", "WKSHP-Python101"], { brandingVars: true });
      assertEquals(imp.code, 0, imp.stdout + imp.stderr);
      // The backend has Python and Bash kernels: this copy asks for one it lacks (and its cells call an
      // outside API, which tests must not reach).
      const nb = join(root, "workshops/WKSHP-API101/1-WKSHP-REST_API_Basics.ipynb");
      await Deno.writeTextFile(
        nb,
        (await Deno.readTextFile(nb)).replace('"name": "bash"', '"name": "powershell"').replace(
          '"display_name": "Bash"',
          '"display_name": "PowerShell"',
        ),
      );
      const r = await runWod(root, [
        "test-workshop",
        "WKSHP-API101",
        "WKSHP-Python101",
        "--env",
        "local",
        "--mode",
        "WKSHP",
      ]);
      assertEquals(r.code, 1, r.stdout + r.stderr);
      assertStringIncludes(
        r.stdout,
        'workshops/WKSHP-API101/1-WKSHP-REST_API_Basics.ipynb: MissingKernel: the notebook names kernel "powershell" (PowerShell)',
      );
      assertStringIncludes(
        r.stdout,
        "workshops/WKSHP-Python101/1-WKSHP-Introduction-to-Python.ipynb: cell 11 (line 2 of the cell): " +
          "StdinNotImplementedError: raw_input was called, but this frontend does not support input requests.\n" +
          '    > name = input("Please enter your name: ")\n',
      );
      assertStringIncludes(
        r.stdout,
        "workshops/WKSHP-Python101/1-WKSHP-Introduction-to-Python.ipynb: cell 45 (line 1 of the cell): " +
          "TypeError: 'tuple' object does not support item assignment",
      );
      await assertSeatClean(info, 114);
      await assertSeatClean(info, 117);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "a workshop using an undefined template variable fails CREATE with its place, the others still run",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await ensureSandbox();
    const root = await repoCopy();
    try {
      await importCorpus(root, ["WKSHP-API101"]);
      // A variable nobody defines (branding variables an environment leaves out render empty).
      const readme = join(root, "workshops/WKSHP-API101/0-ReadMeFirst.ipynb");
      await Deno.writeTextFile(
        readme,
        (await Deno.readTextFile(readme)).replace("BRANDINGLOGO", "NOT_DEFINED_ANYWHERE"),
      );
      const r = await runWod(root, [
        "test-workshop",
        "WKSHP-API101",
        "WKSHP-Shell101",
        "--env",
        "local",
        "--mode",
        "WKSHP",
      ]);
      assertEquals(r.code, 1, r.stdout + r.stderr);
      // Created in one playbook run with API101, Shell101 still runs (created again alone).
      assertStringIncludes(r.stdout, "PASS WKSHP-Shell101 on jup1 seat 102");
      assertStringIncludes(r.stderr, "creating WKSHP-API101 alone after the failed CREATE");
      assertMatch(
        r.stdout,
        /workshops\/WKSHP-API101\/0-ReadMeFirst\.ipynb:7:\d+: UndefinedVariable: template variable NOT_DEFINED_ANYWHERE is not defined by the environment's vars, the workshop's vars or the seat action: define it under vars in environments\/local\.yaml or workshop\.yaml/,
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
