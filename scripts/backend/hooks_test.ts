// Workshop hooks from the private overlay (--private DIR, the wod-private layout) on the real shared
// sandbox: a private hooks-only folder adds hooks to a public workshop (run after the public ones),
// and a private-only workshop runs its own declared hook. Seats 35-39 only (backend area).
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { ensureSandbox, sandboxSsh } from "./sandbox.ts";
import { runSeatTasks, type SeatResult, type SeatTask } from "./seats.ts";
import { sandboxEnvYaml } from "../config/testing.ts";
import { loadConfig } from "../config/load.ts";

const isRoot = Deno.uid() === 0;
const PUB = "WKSHP-PubHooks";
const PRIV = "WKSHP-PrivOnly";

/** A hook that appends one line (its layer, documented env and arguments) to $WOD_HOME/hooks.log. */
function hook(tag: string): string {
  return "#!/bin/sh\nset -e\n" +
    `echo "${tag} $WOD_ACTION $WOD_HOOK $WOD_SEAT $STDID $WOD_USER $WOD_WORKSHOP $WOD_UID ` +
    '$WOD_HOME args=$1,$2,$3" >> "$WOD_HOME/hooks.log"\n';
}

async function write(path: string, text: string, mode = 0o644): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, text, { mode });
}

/** Temp public repo (one workshop with create + post-copy hooks) and temp private dir. */
async function fixtures(): Promise<{ root: string; priv: string }> {
  const root = await Deno.makeTempDir({ prefix: "wod-hooks-pub-" });
  const priv = await Deno.makeTempDir({ prefix: "wod-hooks-priv-" });
  const pw = join(root, "workshops", PUB);
  await write(join(pw, "workshop.yaml"), `id: ${PUB}\ntitle: Public hooks\nduration: 2\n`);
  await write(join(pw, "README.md"), "Seat {{ STDID }}\n");
  await write(join(pw, "hooks/create"), hook("public"), 0o755);
  await write(join(pw, "hooks/post-copy"), hook("public"), 0o755);
  // wod-private layout: hooks only, for the public workshop.
  await write(join(priv, "workshops", PUB, "hooks/create"), hook("private"), 0o755);
  await write(join(priv, "workshops", PUB, "hooks/post-copy"), hook("private"), 0o755);
  // A private-only workshop with a declared (non-default) hook path.
  const vw = join(priv, "workshops", PRIV);
  await write(
    join(vw, "workshop.yaml"),
    `id: ${PRIV}\ntitle: Private only\nduration: 2\nhooks:\n  post-copy: hooks/setup.sh\n`,
  );
  await write(join(vw, "README.md"), "Private seat {{ STDID }}\n");
  await write(join(vw, "hooks/setup.sh"), hook("private-only"), 0o755);
  await write(
    join(root, "environments/local.yaml"),
    sandboxEnvYaml({}, null),
  );
  return { root, priv };
}

for (const [upload, a, b] of [[false, 35, 36], [true, 37, 38]] as const) {
  Deno.test({
    name: `private overlay hooks run after the public ones, with the documented arguments and env${
      upload ? " (content uploaded by unarchive, as a large archive is)" : ""
    }`,
    ignore: !isRoot,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const lines: string[] = [];
      const log = (l: string) => lines.push(l);
      const info = await ensureSandbox(log);
      const { root, priv } = await fixtures();
      const seats = [a, b];
      try {
        const tasks: SeatTask[] = [
          { action: "CREATE", workshop: PUB, seat: a },
          { action: "CREATE", workshop: PRIV, seat: b },
        ];
        const res: SeatResult[] = await runSeatTasks({
          config: await loadConfig(root, { privateDir: priv }),
          privateDir: priv,
          env: "local",
          backend: "jup1",
          tasks,
          log,
          startServers: false,
          ...(upload ? { inlineArchiveMax: 0 } : {}),
        });
        for (const r of res) assert(r.ok, `seat ${r.seat} ${r.action} failed: ${r.error}`);
        const read = async (seat: number) => {
          const r = await sandboxSsh(info, ["cat", `/student/student${seat}/hooks.log`]);
          assertEquals(r.code, 0, `no hooks.log for student${seat}: ${r.stderr}`);
          return r.stdout.trim().split("\n");
        };
        const env = (seat: number, ws: string) =>
          `${seat} ${seat} student${seat} ${ws} ${2000 + seat} /student/student${seat} ` +
          `args=${seat},student${seat},${ws}`;
        assertEquals(await read(a), [
          `public CREATE create ${env(a, PUB)}`,
          `private CREATE create ${env(a, PUB)}`,
          `public CREATE post-copy ${env(a, PUB)}`,
          `private CREATE post-copy ${env(a, PUB)}`,
        ]);
        assertEquals(await read(b), [`private-only CREATE post-copy ${env(b, PRIV)}`]);
        // Content is deployed, hooks are not.
        for (const [seat, ws] of [[a, PUB], [b, PRIV]] as const) {
          const ls = await sandboxSsh(info, ["ls", "-A", `/student/student${seat}/${ws}`]);
          assertEquals(ls.stdout.trim().split("\n"), ["README.md"], `content of student${seat}`);
        }
        // Nothing of the run is left staged on the backend: its hooks were staged as
        // <run>/hooks/<workshop>/... (other test files' runs may be staged at this moment: only ours count).
        const staged = await sandboxSsh(info, ["find", "/var/lib/wod/run", "-mindepth", "1"]);
        assertEquals(staged.code, 0, staged.stderr);
        const ours = staged.stdout.split("\n").filter((p) =>
          p.includes(`/hooks/${PUB}`) || p.includes(`/hooks/${PRIV}`)
        );
        assertEquals(ours, [], "staging folders of this run left behind");
      } finally {
        await runSeatTasks({
          config: await loadConfig(root, { privateDir: priv }),
          privateDir: priv,
          env: "local",
          backend: "jup1",
          tasks: seats.map((seat) => ({ action: "PURGE" as const, workshop: PUB, seat })),
          log,
        }).catch(() => {});
        await Deno.remove(root, { recursive: true }).catch(() => {});
        await Deno.remove(priv, { recursive: true }).catch(() => {});
      }
    },
  });
}
