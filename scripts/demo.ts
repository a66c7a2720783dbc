// `deno task demo [--down]`: the whole flow on this machine with local defaults (scripts/demo/flow.ts).
import { join } from "node:path";
import { parseArgs } from "./common/args.ts";
import { printError, runMain, UsageError } from "./common/errors.ts";
import { demoDown, demoUp, readDemoState, REPO } from "./demo/flow.ts";

export const help = `Usage: deno task demo [--down] [--seat N] [--direct]

Runs the whole flow on this machine (as root; \`bash .ci/setup\` installs what is missing):
the sandbox backend (wod sandbox up), a local git state remote, a mail catcher with a web page
(maildev on 127.0.0.1), the order listener (wod listen --env local) and the registration portal
(wod portal --env local) in the background; a participant registers for WKSHP-Shell101 on the portal,
which sends the CREATE order in the original subject/body format (seats 70-79 belong to the demo; the
portal takes the lowest free one, from N with --seat); \`wod apply --env local\` reports to the
portal, which emails the credentials; then prints the portal, its status page, the JupyterHub URL and
where to read the emails. Everything it starts is recorded in .wod/demo/demo.json.

  --direct no portal: send the CREATE order for seat N (default 70) straight to the listener, in the
           raw bytes the original front end sends

  --down   stop and remove everything the demo started (processes by PID, the sandbox only if the
           demo started it; the demo seat is purged when the sandbox stays up)`;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs("demo", args, {
    down: { type: "boolean" },
    seat: { type: "string" },
    direct: { type: "boolean" },
    help: { type: "boolean" },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const root = Deno.env.get("WOD_ROOT") ?? REPO;
  const work = join(root, ".wod", "demo");
  if (values.down) {
    await demoDown(work);
    return 0;
  }
  let seat: number | undefined;
  if (values.seat !== undefined) {
    seat = Number(values.seat);
    if (!/^[0-9]+$/.test(values.seat) || seat < 70 || seat > 79) {
      throw new UsageError(
        `Invalid --seat "${values.seat}": expected a seat from 70 to 79 (the demo's seats)`,
      );
    }
  }
  const previous = await readDemoState(work);
  if (previous) {
    console.log(`A previous demo is recorded in ${work}: removing it first`);
    await demoDown(work, (l) => console.log(`  ${l}`));
  }
  const t0 = performance.now();
  try {
    const portal = !values.direct;
    const r = await demoUp({
      root,
      work,
      seat,
      portal,
      ...(portal && seat !== undefined ? { range: [seat, 79] as [number, number] } : {}),
    });
    const s = r.state;
    console.log(`
The seat is ready (${((performance.now() - t0) / 1000).toFixed(1)} s in all).
${portal ? `\n  Portal:       ${s.portalUrl}/   (status page: ${s.statusUrl})` : ""}
  JupyterHub:   ${r.hubUrl}
                user ${r.username}, password in the credentials email
  Credentials:  the email to ${s.email} in the mail catcher: ${r.mailUrl}
  Then open:    ${s.workshop}/0-ReadMeFirst.ipynb
  State:        deno task wod state --env ${s.env} --private ${s.privateDir}
  Logs:         ${join(work, "listener.log")}, ${join(work, "maildev.log")}${
      portal ? `, ${join(work, "portal.log")}` : ""
    }
  Stop:         deno task demo --down
`);
    return 0;
  } catch (err) {
    printError(err);
    console.error(
      `\nWhat was started is recorded in ${join(work, "demo.json")}: \`deno task demo --down\` removes it.`,
    );
    return 1;
  }
}

if (import.meta.main) await runMain(main);
