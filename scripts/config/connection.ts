// The connection provider: how to reach each backend of an environment (SSH host, port, user, key,
// known_hosts; hub URL and service token file), resolved in one place. A real backend takes it from
// its environment entry (and WOD_SSH_KEY_FILE / WOD_KNOWN_HOSTS_FILE for the controller's key); a
// `sandbox: true` backend takes it from the state file `wod sandbox up` writes (the host of the same
// name). Only files are read here (no SSH, no sandbox code), so every layer may ask.
import { join } from "node:path";
import { WodError } from "../common/errors.ts";
import { processStart } from "../common/exec.ts";
import type { EnvironmentBackend } from "./types.gen.ts";

/** Where the sandbox keeps its state (one sandbox per directory; tests and the CLI share it). */
export const SANDBOX_DIR = Deno.env.get("WOD_SANDBOX_DIR") ?? "/var/lib/wod/sandbox";
export const SANDBOX_STATE_FILE = join(SANDBOX_DIR, "state.json");
/** The account the controller logs in as on sandbox hosts (sudo without password; root login is off). */
export const SANDBOX_SSH_USER = "wod";
/** Default SSH user of a real backend (schemas/environment.schema.json). */
export const DEFAULT_SSH_USER = "root";

export interface BackendConnection {
  host: string;
  port: number;
  user: string;
  keyFile?: string;
  knownHostsFile?: string;
  hubUrl: string;
  hubTokenFile?: string;
  fqdn: string;
  /** How services run on the host: systemd, or the sandbox's small supervisor (no init system). */
  serviceManager?: "systemd" | "sandbox";
}

/** One sandbox host as recorded in the sandbox state file (written by scripts/backend/sandbox.ts). */
export interface SandboxHostState {
  name: string;
  index: number;
  netns: string;
  veth_host: string;
  veth_ns: string;
  /** The host's own address (inside its namespace). */
  host: string;
  /** The controller's address on the host's link. */
  controller_address: string;
  /** Further controller-side addresses on the link (tests use them as distinct clients). */
  client_addresses: string[];
  ssh_port: number;
  hub_url: string;
  hub_token_file: string;
  pid: number;
  pid_start: string;
  installed: boolean;
}

export interface SandboxFileState {
  version: 2;
  /** Per-directory tag in namespace and link names. */
  tag: string;
  /** The /24 the hosts' /29 links are cut from. */
  subnet: string;
  ssh_user: string;
  ssh_key: string;
  known_hosts: string;
  proxy?: { pid: number; pid_start: string; port: number };
  hosts: SandboxHostState[];
  /**
   * The control host (not a backend), only when asked for (ensureSandboxControlHost): its own namespace
   * and link, sshd and git, and a registry proxy of its own on its link.
   */
  control?: { host: SandboxHostState; proxy: { pid: number; pid_start: string; port: number } };
}

export function readSandboxStateSync(): SandboxFileState | undefined {
  try {
    const s = JSON.parse(Deno.readTextFileSync(SANDBOX_STATE_FILE));
    return s && s.version === 2 && Array.isArray(s.hosts) ? s as SandboxFileState : undefined;
  } catch {
    return undefined;
  }
}

/** The running, installed sandbox host of that backend name, or undefined. */
export function sandboxHost(name: string): { state: SandboxFileState; host: SandboxHostState } | undefined {
  const state = readSandboxStateSync();
  const host = state?.hosts.find((h) => h.name === name);
  if (!state || !host || !host.installed || processStart(host.pid) !== host.pid_start) return undefined;
  return { state, host };
}

/** Whether a backend entry is a host of this machine's sandbox (`sandbox: true`), not a real server. */
export function isSandboxBackend(b: EnvironmentBackend): boolean {
  return b.sandbox === true;
}

/** Connection details of one backend entry. Throws with the fix when a sandbox backend is not up. */
export function connectionFor(b: EnvironmentBackend, envName: string): BackendConnection {
  if (isSandboxBackend(b)) {
    const s = sandboxHost(b.name);
    if (!s) {
      throw new WodError(
        `Backend "${b.name}" of environment "${envName}" is a sandbox host, which is not running ` +
          `(state ${SANDBOX_STATE_FILE}): run \`deno task wod sandbox up\``,
      );
    }
    return {
      host: s.host.host,
      port: s.host.ssh_port,
      user: s.state.ssh_user,
      keyFile: s.state.ssh_key,
      knownHostsFile: s.state.known_hosts,
      hubUrl: s.host.hub_url,
      hubTokenFile: s.host.hub_token_file,
      fqdn: b.fqdn ?? s.host.host,
      serviceManager: "sandbox",
    };
  }
  const host = b.host ?? b.fqdn;
  if (!host) throw new WodError(`Backend "${b.name}" of environment "${envName}" has neither host nor fqdn`);
  const fqdn = b.fqdn ?? host;
  return {
    host,
    port: b.ssh_port ?? 22,
    user: b.ssh_user ?? DEFAULT_SSH_USER,
    keyFile: Deno.env.get("WOD_SSH_KEY_FILE") || undefined,
    knownHostsFile: Deno.env.get("WOD_KNOWN_HOSTS_FILE") || undefined,
    hubUrl: b.hub_url ?? `https://${fqdn}`,
    fqdn,
    serviceManager: "systemd",
  };
}

/**
 * Where participants log in on a backend (credentials emails, the portal): the environment's
 * hub_url, else the running sandbox host's, else https://FQDN. Never throws.
 */
export function hubUrlFor(b: EnvironmentBackend): string {
  if (b.hub_url) return b.hub_url;
  if (isSandboxBackend(b)) {
    const s = sandboxHost(b.name);
    if (s) return s.host.hub_url;
  }
  return `https://${b.fqdn ?? b.host ?? "localhost"}`;
}
