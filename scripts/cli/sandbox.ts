// wod sandbox up|down|status: the disposable local backend host of the `local` environment.
import { parseArgs } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { sandboxDown, sandboxStatus, sandboxUp } from "../backend/sandbox.ts";

export const help = `
Usage: deno task wod sandbox up|down|status

A disposable Debian backend host on this machine (root needed): a debootstrap image cached under
/var/cache/wod/sandbox, an overlay per run, own namespaces, sshd on a free 127.0.0.1 port with its
host key pinned in a known_hosts file, then the project's install playbook (ansible/install.yml).
State lives in /var/lib/wod/sandbox: the CLI, the tests and the demo share one sandbox.

  up      start (or reuse) the sandbox and install it; prints JSON (ssh_port, ssh_key, known_hosts,
          hub_url, hub_token_file)
  status  the same JSON when it runs; {"running": false} and exit 1 when not
  down    stop it and drop its per-run layer (the image cache stays)
`;

export async function run(args: string[]): Promise<number> {
  const { positionals } = parseArgs("sandbox", args, {}, true);
  if (positionals.length !== 1) {
    throw new UsageError('Expected one action for "wod sandbox": up, down or status');
  }
  const log = (l: string) => console.error(l);
  switch (positionals[0]) {
    case "up": {
      const info = await sandboxUp(log);
      console.log(JSON.stringify({ running: true, ...info }, null, 2));
      return 0;
    }
    case "status": {
      const info = await sandboxStatus();
      console.log(JSON.stringify(info ? { running: true, ...info } : { running: false }, null, 2));
      return info ? 0 : 1;
    }
    case "down": {
      const stopped = await sandboxDown();
      console.error(stopped ? "sandbox: stopped" : "sandbox: was not running");
      return 0;
    }
    default:
      throw new UsageError(`Unknown sandbox action "${positionals[0]}": expected up, down or status`);
  }
}
