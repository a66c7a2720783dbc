// End to end, the demo flow headless, in a temporary copy of the repository (environments/ and
// workshops/; the demo overlay gives WKSHP-Shell101 the seats 70-79 of the shared sandbox, the demo and
// end-to-end share of docs/testbed.md; this test uses seat 71):
// real sandbox backend (ansible over SSH, JupyterHub 3.0 + PAM), `wod listen` as a process, an order in
// the original front end's raw bytes, a local bare git state remote, maildev as the mail catcher,
// `wod apply`; then Debian's Chromium (playwright-core) logs in with the emailed password, opens
// WKSHP-Shell101/0-ReadMeFirst.ipynb in the classic notebook UI and saves a screenshot; then
// `wod expire --now <after the end>` + `wod apply`, and the same login is refused.
// The password never appears in the test output, the commands' output, the listener log or git.
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { demoDown, demoUp, maildevEmails, REPO, wodCli } from "../demo/flow.ts";
import { openStore } from "../state/store.ts";
import { hubBrowserSession } from "./browser.ts";
import { sandboxTls } from "../backend/sandbox.ts";

const SEAT = 71;
const USER = `student${SEAT}`;
const NOTEBOOK = "WKSHP-Shell101/0-ReadMeFirst.ipynb";

Deno.test({
  name: "e2e: original-format order -> listener -> state -> apply -> emailed password logs in (Chromium), " +
    "notebook opens -> expire + apply -> login refused",
  ignore: Deno.uid() !== 0,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "wod-e2e-root-" });
    const work = join(root, ".wod", "demo");
    const lines: string[] = [];
    const log = (l: string) => {
      lines.push(l);
      console.log(`  ${l}`);
    };
    let password = "";
    const t0 = performance.now();
    const phase = (what: string) =>
      console.log(`  [e2e +${((performance.now() - t0) / 1000).toFixed(1)} s] ${what}`);
    try {
      for (const d of ["environments", "workshops"]) await exec("cp", ["-r", join(REPO, d), join(root, d)]);
      const up = await demoUp({
        root,
        work,
        seat: SEAT,
        range: [70, 79],
        email: "e2e-participant@example.org",
        customer: "7171",
        shareSandbox: true,
        log,
      });
      const st = up.state;
      assertEquals(up.steps.length, 8, "every demo step ran");

      // The credentials email, read from maildev's REST API.
      const mails = (await maildevEmails(st.webPort!)).filter((m) =>
        m.to.some((t) => t.address === "e2e-participant@example.org")
      );
      assertEquals(mails.length, 1, "exactly one credentials email");
      const text = mails[0].text ?? "";
      assertMatch(mails[0].subject, /is ready/);
      assert(text.includes(`User name: ${USER}`), "the email names the user");
      assert(text.includes(st.hubUrl!), "the email names the hub URL");
      assert(
        text.includes(`${st.hubUrl}/hub/user-redirect/lab/tree/${NOTEBOOK}`),
        "the email links to the entry notebook in JupyterLab",
      );
      password = /Password:\s+(\S+)/.exec(text)?.[1] ?? "";
      assert(password.length >= 12, "the email holds a password of at least 12 characters");

      // The recorded seat is active, with an end time.
      const seatNow = async () => {
        const store = await openStore(root, "local", { privateDir: st.privateDir });
        try {
          return (await store.readSeats()).find((s) => s.backend === "jup1" && s.seat === SEAT);
        } finally {
          await store.close();
        }
      };
      const active = await seatNow();
      assertEquals([active?.status, active?.workshop, active?.customer], [
        "active",
        "WKSHP-Shell101",
        "7171",
      ]);
      assert(active?.expires, "the active seat has an end time");

      // Chromium: log in with the emailed password, open the entry notebook, take a screenshot.
      const shotDir = join(REPO, ".wod", "e2e");
      await Deno.mkdir(shotDir, { recursive: true });
      const shot = join(shotDir, `${USER}-0-ReadMeFirst.png`);
      await Deno.remove(shot).catch(() => {});
      phase("Chromium: log in as the student, open the notebook");
      const run = await hubBrowserSession({
        hubUrl: st.hubUrl!,
        username: USER,
        password,
        notebookPath: NOTEBOOK,
        screenshot: shot,
        tlsCert: (await sandboxTls()).cert,
      });
      assertEquals(
        run.landed,
        `/user/${USER}/lab/tree/${NOTEBOOK}`,
        "the student lands on the entry notebook",
      );
      assert(run.login.ok, `the student cannot log in: ${run.login.ok ? "" : run.login.message}`);
      assert(run.notebook, "the notebook was not opened");
      assertMatch(run.notebook.title, /0-ReadMeFirst/);
      assert(run.notebook.cells >= 1, "the notebook shows its cells");
      assert((await Deno.stat(shot)).size > 10_000, "the screenshot is a real picture");
      console.log(`  screenshot of ${NOTEBOOK} as ${USER}: ${shot}`);

      phase("wod expire --now <after the end>, wod apply");
      // Expiry after the end, then apply: the seat is cleaned up and the password stops working.
      const after = new Date(Date.parse(active!.expires!) + 60_000).toISOString();
      const e = await wodCli(st, ["expire", "--env", "local", "--private", st.privateDir, "--now", after]);
      st.outputs.push(e.stdout, e.stderr);
      assertEquals(e.code, 0, `wod expire failed:\n${e.stdout}\n${e.stderr}`);
      const a = await wodCli(st, ["apply", "--env", "local", "--private", st.privateDir]);
      st.outputs.push(a.stdout, a.stderr);
      assertEquals(a.code, 0, `wod apply (expiry) failed:\n${a.stdout}\n${a.stderr}`);
      const freed = await seatNow();
      assertEquals([freed?.status, freed?.customer], ["free", undefined]);

      phase("Chromium: the same login again");
      const refused = await hubBrowserSession({
        hubUrl: st.hubUrl!,
        username: USER,
        password,
        tlsCert: (await sandboxTls()).cert,
      });
      assert(!refused.login.ok, "the expired seat's password still logs in");
      assertMatch(refused.login.message, /Invalid username or password/i);

      phase("checks for leaked passwords");
      // No password anywhere it could leak to.
      const history =
        (await exec("git", ["log", "--all", "-p", "--format=%H %B"], { cwd: st.stateRemote })).stdout;
      assert(history.includes(`CREATE jup1/${SEAT}`), "the state remote holds the order commit");
      const texts = [
        ...lines,
        ...st.outputs,
        history,
        await Deno.readTextFile(join(work, "listener.log")),
        await Deno.readTextFile(join(work, "maildev.log")),
      ];
      for (const t of texts) assert(!t.includes(password), "the password appears in an output or log");
      assert(
        !history.includes("e2e-participant@example.org"),
        "the email is in the git history in plain text",
      );
    } catch (err) {
      // Never let the password reach the test report through an assertion message.
      const e = err as Error;
      throw password ? new Error(e.message.split(password).join("[REDACTED]")) : e;
    } finally {
      await demoDown(work, (l) => console.log(`  down: ${l}`)).catch((e) =>
        console.error(`  down: ${e.message}`)
      );
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
