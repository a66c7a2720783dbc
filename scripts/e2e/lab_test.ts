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
import { JupyterServer } from "../content/kernel.ts";
import { runSeatTasks } from "../backend/seats.ts";
import { loadConfig } from "../config/load.ts";
import { hubBrowserSession } from "./browser.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const isRoot = Deno.uid() === 0;
const API101 = join(CORPUS, "wod-notebooks/WKSHP-API101");
const log = () => {};

/**
 * Run `code` in a `kernel` session of `user`'s server for `path`, over the hub's HTTPS entry (REST and
 * the kernel's wss channel through nginx), with a token the student asks for with the password.
 */
async function runCell(
  hubUrl: string,
  user: string,
  password: string,
  path: string,
  kernel: string,
  code: string,
) {
  const tok = await hubFetch(`${hubUrl}/hub/api/users/${user}/tokens`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ auth: { username: user, password }, note: "lab test", expires_in: 600 }),
  });
  assertEquals(tok.status, 201, `no token for ${user}`);
  const server = new JupyterServer(`${hubUrl}/user/${user}`, (await tok.json() as { token: string }).token);
  const session = await server.createSession(path, kernel);
  const channel = await server.connect(session.kernel.id);
  try {
    const r = await channel.execute(code, 60_000);
    assertEquals(r.status, "ok", JSON.stringify(r.error));
    return r.outputs.map((o) => "text" in o ? o.text : "").join("");
  } finally {
    channel.close();
    await server.deleteSession(session.id).catch(() => {});
  }
}

/** A temp repo with WKSHP-Shell101 on seats 74-75 of the sandbox (its capacity lowered to fit). */
async function repo(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "wod-lab-test-" });
  cpSync(join(REPO, "workshops/WKSHP-Shell101"), join(root, "workshops/WKSHP-Shell101"), { recursive: true });
  const ws = join(root, "workshops/WKSHP-Shell101/workshop.yaml");
  await Deno.writeTextFile(ws, (await Deno.readTextFile(ws)).replace(/^capacity: .*$/m, "capacity: 2"));
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
        (e) => `${e} ${(e as Error).cause}`,
      );
      assertMatch(err, /certificate|UnknownIssuer|invalid peer/i);
    } finally {
      plain.close();
    }
  },
});

Deno.test({
  name:
    "in Chromium over HTTPS a student logs in with the delivered password, lands on the readme-first notebook in JupyterLab, opens Python and Bash notebooks, and cells run in both kernels",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox(log);
    const root = await repo();
    const user = "student74";
    try {
      const [created] = await runSeatTasks({
        config: await loadConfig(root),
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
        runFirstCell: true,
        tlsCert: (await sandboxTls()).cert,
      });
      assert(run.login.ok, run.login.ok ? "" : `login failed at ${run.login.url}: ${run.login.message}`);
      assertEquals(run.landed, `/user/${user}/lab/tree/WKSHP-Shell101/0-ReadMeFirst.ipynb`);
      const [py, sh] = run.ran!;
      assertMatch(py.kernel, /Python 3/);
      assertEquals(sh.kernel, "Bash");
      // Run in JupyterLab (click, run button), and again over the kernel API.
      assertMatch(py.output!, /python 42 3/);
      assertMatch(sh.output!, /bash 42 5/);
      const pw = created.password!;
      assertMatch(
        await runCell(
          info.hub_url,
          user,
          pw,
          "py.ipynb",
          "python3",
          "import sys\nprint('python', 6 * 7, sys.version_info[0])",
        ),
        /python 42 3/,
      );
      assertMatch(
        await runCell(
          info.hub_url,
          user,
          pw,
          "sh.ipynb",
          "bash",
          'echo "bash $((6 * 7)) ${BASH_VERSINFO[0]}"',
        ),
        /bash 42 5/,
      );
    } finally {
      await runSeatTasks({
        config: await loadConfig(root),
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
        config: await loadConfig(root),
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
      assert(run.login.ok, run.login.ok ? "" : `login failed at ${run.login.url}: ${run.login.message}`);
      assertEquals(run.landed, `/user/${user}/lab/tree/WKSHP-API101/0-ReadMeFirst.ipynb`);
      assertEquals(run.notebook!.kernel, "Bash");
      // Its first code cell (`curl --version`) in the notebook's own Bash kernel: the backend's curl (the
      // corpus notebook's saved output is another curl's).
      const nb = JSON.parse(
        await Deno.readTextFile(join(root, "workshops/WKSHP-API101/1-WKSHP-REST_API_Basics.ipynb")),
      ) as { cells: { cell_type: string; source: string | string[] }[] };
      const first = nb.cells.find((c) => c.cell_type === "code")!;
      const code = Array.isArray(first.source) ? first.source.join("") : first.source;
      const out = await runCell(
        info.hub_url,
        user,
        created.password!,
        "WKSHP-API101/1-WKSHP-REST_API_Basics.ipynb",
        "bash",
        code,
      );
      const curl = await sandboxSsh(info, ["curl", "--version"]);
      const version = curl.stdout.split(" ").slice(0, 2).join(" ");
      assertMatch(out, /^curl \d+\.\d+/);
      assert(out.startsWith(version), out);
      // The same cell run in JupyterLab (click, run button) printed it too.
      assert(run.notebook!.output!.startsWith(version), run.notebook!.output);
    } finally {
      await runSeatTasks({
        config: await loadConfig(root),
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
