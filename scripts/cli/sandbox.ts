// wod sandbox up|down|status: the disposable local backend hosts of the `local` environment.
import { parseArgs } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { sandboxDown, sandboxHosts, type SandboxInfo, sandboxUp } from "../backend/sandbox.ts";

export const help = `
Usage: deno task wod sandbox up|down|status

Disposable Debian backend hosts on this machine (root needed), one per \`sandbox: true\` backend of
environments/local.yaml: a debootstrap image cached under /var/cache/wod/sandbox, an overlay per host,
own namespaces including a network namespace joined to this machine by a veth pair (a /29 per host
under 10.231.0.0/16, picked per sandbox directory), sshd on port 22 at the host's address with its
host key pinned in a known_hosts file. The controller logs in as the sudo user "wod" (root login is
refused). The hosts reach only the package registries, through an allowlisting proxy on this
machine's end of each link. Then the project's install playbook (ansible/install.yml) on all hosts.
State lives in $WOD_SANDBOX_DIR (default /var/lib/wod/sandbox): the CLI, the tests and the demo share it.

  up      start (or reuse) the hosts and install them; prints JSON:
          {"running", "backends": [{name, host, ssh_port, ssh_user, ssh_key, known_hosts, hub_url,
          hub_token_file}], and the first backend's keys at the top level}
  status  the same JSON when they run; {"running": false} and exit 1 when not
  down    stop them: processes, links, namespaces, mounts and per-run layers of this sandbox only
          (the image and download caches stay), and the control host "ctl" when one runs (a host
          that is not a backend, brought up on request only: \`bench production\` keeps its state
          remote there)
`;

function backendJson(h: SandboxInfo) {
  return {
    name: h.name,
    host: h.host,
    ssh_port: h.ssh_port,
    ssh_user: h.ssh_user,
    ssh_key: h.ssh_key,
    known_hosts: h.known_hosts,
    hub_url: h.hub_url,
    hub_token_file: h.hub_token_file,
  };
}

/** The JSON of `up` and `status` (docs/cli.md): every backend, and the first one's keys at the top level. */
export function statusJson(hosts: SandboxInfo[]) {
  return { running: true, ...backendJson(hosts[0]), backends: hosts.map(backendJson) };
}

export async function run(args: string[]): Promise<number> {
  const { positionals } = parseArgs("sandbox", args, {}, true);
  if (positionals.length !== 1) {
    throw new UsageError('Expected one action for "wod sandbox": up, down or status');
  }
  const log = (l: string) => console.error(l);
  switch (positionals[0]) {
    case "up": {
      console.log(JSON.stringify(statusJson(await sandboxUp(log)), null, 2));
      return 0;
    }
    case "status": {
      const hosts = sandboxHosts();
      console.log(JSON.stringify(hosts ? statusJson(hosts) : { running: false }, null, 2));
      return hosts ? 0 : 1;
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
