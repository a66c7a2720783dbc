// Acceptance of the backend stack (issue 12), in Debian's Chromium against the real sandbox: through
// nginx over HTTPS, a student logs in with the password a CREATE delivered, lands on the workshop's
// readme-first notebook in JupyterLab, and runs a cell in a Python and in a Bash kernel; HTTP is
// redirected to HTTPS; the original corpus workshop WKSHP-API101 (imported with `wod import` into a
// temporary repo, its capacity corrected) deploys and its first notebook with code opens with the Bash
// kernel and runs its first code cell. Seats 74-76 of the e2e share (docs/testbed.md).
import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { CORPUS, runWod, sandboxEnvYaml } from "../config/testing.ts";
import { ensureSandbox, sandboxSsh, sandboxTls } from "../backend/sandbox.ts";
import { hubFetch } from "../backend/hub.ts";
import { runSeatTasks } from "../backend/seats.ts";
import { hubBrowserSession } from "./browser.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const isRoot = Deno.uid() === 0;
const API101 = join(CORPUS, "wod-notebooks/WKSHP-API101");
const log = () => {};

/** A temp repo with WKSHP-Shell101 on seats 74-75 of the sandbox. */
async function repo(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "wod-lab-test-" });
  cpSync(join(REPO, "workshops/WKSHP-Shell101"), join(root, "workshops/WKSHP-Shell101"), { recursive: true });
  await Deno.mkdir(join(root, "environments"));
  await Deno.writeTextFile(
    join(root, "environments/local.yaml"),
    sandboxEnvYaml({ "WKSHP-Shell101": [74, 75] }),
  );
  return root;
}

/** A notebook with one code cell for `kernel`, written into the student's home as the student. */
async function studentNotebook(
  info: Awaited<ReturnType<typeof ensureSandbox>>,
  user: string,
  file: string,
  kernel: { name: string; display_name: string; language: string },
  code: string,
): Promise<void> {
  const nb = {
    cells: [{ cell_type: "code", execution_count: null, metadata: {}, outputs: [], source: [code] }],
    metadata: { kernelspec: kernel },
    nbformat: 4,
    nbformat_minor: 5,
  };
  const r = await sandboxSsh(
    info,
    ["runuser", "-u", user, "--", "tee", `/student/${user}/${file}`],
    JSON.stringify(nb),
  );
  assertEquals(r.code, 0, r.stderr);
}

Deno.test({
  name: "HTTP to the hub is redirected to HTTPS, and the hub answers over HTTPS as JupyterHub 5",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox(log);
    const https = new URL(info.hub_url);
    assertEquals(https.protocol, "https:");
    const res = await fetch(`${info.hub_http_url}/hub/login?next=%2Fhub%2F`, { redirect: "manual" });
    await res.body?.cancel();
    assertEquals(res.status, 301);
    assertEquals(res.headers.get("location"), `${https.origin}/hub/login?next=%2Fhub%2F`);
    const api = await hubFetch(`${info.hub_url}/hub/api/`);
    assertMatch((await api.json() as { version: string }).version, /^5\./);
    // Without the sandbox's CA the certificate is refused (nothing switched checks off).
    const plain = Deno.createHttpClient({});
    try {
      const err = await fetch(`${info.hub_url}/hub/api/`, { client: plain } as RequestInit).then(
        () => "",
        (e) => String(e),
      );
      assertMatch(err, /certificate|UnknownIssuer|invalid peer/i);
    } finally {
      plain.close();
    }
  },
});

Deno.test({
  name:
    "in Chromium over HTTPS a student logs in with the delivered password, lands on the readme-first notebook in JupyterLab and runs a Python and a Bash cell",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox(log);
    const root = await repo();
    const user = "student74";
    try {
      const [created] = await runSeatTasks({
        root,
        env: "local",
        backend: "jup1",
        tasks: [{ action: "CREATE", workshop: "WKSHP-Shell101", seat: 74 }],
        log,
      });
      assert(created.ok, created.error);
      await studentNotebook(
        info,
        user,
        "py.ipynb",
        { name: "python3", display_name: "Python 3 (ipykernel)", language: "python" },
        "import sys\nprint('python', 6 * 7, sys.version_info[0])",
      );
      await studentNotebook(
        info,
        user,
        "sh.ipynb",
        { name: "bash", display_name: "Bash", language: "bash" },
        'echo "bash $((6 * 7)) ${BASH_VERSINFO[0]}"',
      );
      const run = await hubBrowserSession({
        hubUrl: info.hub_url,
        username: user,
        password: created.password!,
        run: ["py.ipynb", "sh.ipynb"],
        tlsCert: (await sandboxTls()).cert,
      });
      assert(run.login.ok, run.login.ok ? "" : run.login.message);
      assertEquals(run.landed, `/user/${user}/lab/tree/WKSHP-Shell101/0-ReadMeFirst.ipynb`);
      const [py, sh] = run.ran!;
      assertMatch(py.kernel, /Python 3/);
      assertMatch(py.output!, /python 42 3/);
      assertEquals(sh.kernel, "Bash");
      assertMatch(sh.output!, /bash 42 5/);
    } finally {
      await runSeatTasks({
        root,
        env: "local",
        backend: "jup1",
        tasks: [{ action: "PURGE", workshop: "WKSHP-Shell101", seat: 74 }],
        log,
      }).catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the corpus workshop WKSHP-API101 deploys and its first notebook with code opens with the Bash kernel and runs its first cell",
  ignore: !isRoot || !existsSync(API101) ? true : false,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox(log);
    const root = await repo();
    const src = await Deno.makeTempDir({ prefix: "wod-lab-corpus-" });
    const user = "student76";
    try {
      cpSync(API101, join(src, "WKSHP-API101"), { recursive: true });
      const wodYml = join(src, "WKSHP-API101/wod.yml");
      await Deno.writeTextFile(
        wodYml,
        (await Deno.readTextFile(wodYml)).replace(/^range: .*$/m, "range: [76,76]").replace(
          /^capacity: .*$/m,
          "capacity: 1",
        ),
      );
      const imp = await runWod(root, ["import", src, "--env", "local"]);
      assertEquals(imp.code, 0, imp.stdout + imp.stderr);
      const [created] = await runSeatTasks({
        root,
        env: "local",
        backend: "jup1",
        tasks: [{ action: "CREATE", workshop: "WKSHP-API101", seat: 76 }],
        log,
      });
      assert(created.ok, created.error);
      const run = await hubBrowserSession({
        hubUrl: info.hub_url,
        username: user,
        password: created.password!,
        notebookPath: "WKSHP-API101/1-WKSHP-REST_API_Basics.ipynb",
        runFirstCell: true,
        tlsCert: (await sandboxTls()).cert,
      });
      assert(run.login.ok, run.login.ok ? "" : run.login.message);
      assertEquals(run.landed, `/user/${user}/lab/tree/WKSHP-API101/0-ReadMeFirst.ipynb`);
      assertEquals(run.notebook!.kernel, "Bash");
      // `curl --version` on the backend (the corpus notebook's saved output is another curl's).
      assertMatch(run.notebook!.output!, /^curl \d+\.\d+/);
      const curl = await sandboxSsh(info, ["curl", "--version"]);
      assert(
        run.notebook!.output!.startsWith(curl.stdout.split(" ").slice(0, 2).join(" ")),
        run.notebook!.output,
      );
    } finally {
      await runSeatTasks({
        root,
        env: "local",
        backend: "jup1",
        tasks: [{ action: "PURGE", workshop: "WKSHP-API101", seat: 76 }],
        log,
      }).catch(() => {});
      await Deno.remove(root, { recursive: true });
      await Deno.remove(src, { recursive: true });
    }
  },
});
