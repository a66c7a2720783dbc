// The sandbox: disposable Debian backend hosts on this machine (docs/testbed.md), one per `sandbox: true`
// backend of environments/local.yaml. A debootstrap image cached on disk, an overlay per host and
// run, own mount/pid/uts/ipc namespaces and a network namespace of its own joined to this machine
// by a veth pair (a /29 per host, picked per sandbox directory), sshd on port 22 at the host's address
// with its host key pinned in a known_hosts file we write. Access like a real host: a named user with
// passwordless sudo and our key, root login refused; Ansible becomes root with sudo. The hosts have no
// route out: an allowlisting proxy (registry_proxy.ts) on the controller's side of each link lets apt,
// pip and npm reach the package registries and nothing else. Then the project's install playbook.
// State (SANDBOX_DIR/state.json, the format of scripts/config/connection.ts) is guarded by a file lock
// so concurrent test processes calling ensureSandbox() get the same hosts.
import { join } from "node:path";
import { existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { parse as parseYaml } from "yaml";
import { WodError } from "../common/errors.ts";
import { exec, processStart, spawn } from "../common/exec.ts";
import {
  readSandboxStateSync,
  SANDBOX_DIR,
  SANDBOX_SSH_USER,
  SANDBOX_STATE_FILE,
  type SandboxFileState,
  type SandboxHostState,
} from "../config/connection.ts";
import { environmentInstallVars, installBackends, type InstallTarget } from "./install.ts";
import { loadConfig } from "../config/load.ts";
import { hubFetch, trustHubCa } from "./hub.ts";

export { SANDBOX_DIR };
export const IMAGE_CACHE = Deno.env.get("WOD_SANDBOX_CACHE") ?? "/var/cache/wod/sandbox";
/** Download caches shared by every sandbox host and run (bind-mounted into each host). */
const PIP_CACHE = Deno.env.get("WOD_SANDBOX_PIP_CACHE") ?? "/var/cache/wod/pip";
const NPM_CACHE = Deno.env.get("WOD_SANDBOX_NPM_CACHE") ?? "/var/cache/wod/npm";
const SUITE = "bookworm";
const IMAGE = join(IMAGE_CACHE, SUITE);
const IMAGE_DONE = join(IMAGE, ".wod-image-complete");
const APT_CACHE = join(IMAGE_CACHE, "apt-archives");
const HOSTS_DIR = join(SANDBOX_DIR, "hosts");
const TLS_DIR = join(SANDBOX_DIR, "tls");
const LOCK_FILE = join(SANDBOX_DIR, "lock");
const KEY_FILE = join(SANDBOX_DIR, "id_ed25519");
const KNOWN_HOSTS = join(SANDBOX_DIR, "known_hosts");
const PROXY_LOG = join(SANDBOX_DIR, "registry-proxy.log");
const LOCAL_ENV = new URL("../../environments/local.yaml", import.meta.url).pathname;
const CODE_ROOT = new URL("../../", import.meta.url).pathname;
/** Port of the registry proxy on the controller's side of each link. */
export const PROXY_PORT = 3128;
/** The hub's public port on each sandbox host (the role's default). */
export const SANDBOX_HUB_PORT = 8000;
/**
 * Download caches bind-mounted into each host (pip's and npm's caches take concurrent writers). Apt's
 * archive directory is not shared that way: apt locks it without waiting, so two hosts installing at
 * once would fail. Each host gets hard links to the cached packages instead (seedAptArchives), and
 * what it downloaded goes back into the cache after the install (harvestAptArchives).
 */
const MOUNTS: [string, string][] = [
  [PIP_CACHE, "var/cache/wod/pip"],
  [NPM_CACHE, "var/cache/wod/npm"],
];
/** nftables table the sandbox's fail2ban bans into (inside each host's own network namespace). */
export function sandboxNftTable(): string {
  return "wod-sandbox-f2b";
}

/** One sandbox host as callers see it (the first one is what ensureSandbox() returns). */
export interface SandboxInfo {
  /** Backend name in environments/local.yaml. */
  name: string;
  host: string;
  ssh_port: number;
  ssh_user: string;
  ssh_key: string;
  known_hosts: string;
  hub_url: string;
  hub_token_file: string;
  /** The CA the hub's TLS certificate is signed by (trust it for hub_url). */
  ca_file: string;
  /** The hub's plain-HTTP entry (redirects to hub_url). */
  hub_http_url: string;
  pid: number;
  /** The controller's address on the host's link (never banned by the host's fail2ban). */
  controller_address: string;
  /** Two more controller-side addresses on the link, for tests that need distinct clients. */
  client_addresses: string[];
}

export type Log = (line: string) => void;

/** The sandbox backends of the local environment: name, student pool, uid base. */
export interface SandboxBackend {
  name: string;
  students: [number, number];
  uid_base: number;
  admin_user: string;
}

export function localSandboxBackends(file = LOCAL_ENV): SandboxBackend[] {
  let doc: {
    admin_user?: string;
    backends?: { name: string; sandbox?: boolean; students?: [number, number]; uid_base?: number }[];
  };
  try {
    doc = parseYaml(Deno.readTextFileSync(file));
  } catch (e) {
    throw new WodError(`Cannot read the sandbox backends from ${file}: ${(e as Error).message}`);
  }
  const out = (doc?.backends ?? []).filter((b) => b.sandbox === true).map((b) => ({
    name: b.name,
    students: b.students ?? [1, 120],
    uid_base: b.uid_base ?? 2000,
    admin_user: doc.admin_user ?? "wodadmin",
  }));
  if (out.length === 0) {
    throw new WodError(`${file} has no backend with \`sandbox: true\`: nothing for the sandbox to bring up`);
  }
  if (out.length > 30) throw new WodError(`${file}: at most 30 sandbox backends (has ${out.length})`);
  return out;
}

/** Tag of this sandbox directory in namespace and link names (two sandboxes never share names). */
export const SANDBOX_TAG = createHash("sha256").update(SANDBOX_DIR).digest("hex").slice(0, 6);

function netnsName(name: string): string {
  return `wod-${SANDBOX_TAG}-${name}`;
}

function alive(pid: number, start: string): boolean {
  return processStart(pid) === start;
}

function hostsAlive(s: SandboxFileState): boolean {
  return s.hosts.every((h) => alive(h.pid, h.pid_start));
}

function infoOf(s: SandboxFileState, h: SandboxHostState): SandboxInfo {
  // Whoever is handed the sandbox's hub URL can call it: its CA is trusted for hub requests.
  trustHubCa(join(TLS_DIR, "ca.pem"));
  return {
    name: h.name,
    host: h.host,
    ssh_port: h.ssh_port,
    ssh_user: s.ssh_user,
    ssh_key: s.ssh_key,
    known_hosts: s.known_hosts,
    hub_url: h.hub_url,
    hub_token_file: h.hub_token_file,
    pid: h.pid,
    controller_address: h.controller_address,
    client_addresses: h.client_addresses,
    ca_file: join(TLS_DIR, "ca.pem"),
    hub_http_url: `http://${h.host}`,
  };
}

async function writeState(s: SandboxFileState): Promise<void> {
  await Deno.writeTextFile(SANDBOX_STATE_FILE, JSON.stringify(s, null, 2) + "\n", { mode: 0o600 });
}

/** Every running, installed sandbox host (first backend first), or undefined. */
export function sandboxHosts(): SandboxInfo[] | undefined {
  const s = readSandboxStateSync();
  if (!s || s.hosts.length === 0 || !hostsAlive(s) || !s.hosts.every((h) => h.installed)) return undefined;
  return s.hosts.map((h) => infoOf(s, h));
}

/** The first running, installed sandbox host, or undefined. */
export function sandboxStatus(): Promise<SandboxInfo | undefined> {
  return Promise.resolve(sandboxHosts()?.[0]);
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  await Deno.mkdir(SANDBOX_DIR, { recursive: true, mode: 0o700 });
  const f = await Deno.open(LOCK_FILE, { create: true, write: true, read: true });
  try {
    await f.lock(true);
    return await fn();
  } finally {
    try {
      await f.unlock();
    } catch { /* closing releases it too */ }
    f.close();
  }
}

function requireRoot(): void {
  if (Deno.uid() !== 0) {
    throw new WodError(
      `The sandbox needs root (mounts, namespaces, chroot): running as uid ${Deno.uid()}; run it as root`,
    );
  }
}

function which(cmd: string): string | undefined {
  for (const d of (Deno.env.get("PATH") ?? "").split(":")) {
    const p = join(d, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

async function debianMirror(): Promise<string> {
  for (const f of ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]) {
    try {
      const text = await Deno.readTextFile(f);
      const m = text.match(/^URIs:\s*(\S+)/m) ?? text.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+main/m);
      if (m && !m[1].includes("security")) return m[1];
    } catch { /* next */ }
  }
  return "http://deb.debian.org/debian";
}

async function ensureImage(log: Log): Promise<void> {
  if (existsSync(IMAGE_DONE)) return;
  const debootstrap = which("debootstrap");
  if (!debootstrap) {
    throw new WodError(
      `debootstrap is not installed: the sandbox image ${IMAGE} must be built once with it ` +
        "(apt-get install debootstrap, or bash .ci/setup)",
    );
  }
  const tmp = `${IMAGE}.tmp`;
  await Deno.mkdir(IMAGE_CACHE, { recursive: true });
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  const mirror = await debianMirror();
  log(`sandbox: building the ${SUITE} image in ${IMAGE} from ${mirror} (about a minute, once)`);
  await exec(debootstrap, [
    "--variant=minbase",
    "--include=openssh-server,python3,python3-apt,sudo,procps",
    SUITE,
    tmp,
    mirror,
  ]);
  await Deno.remove(IMAGE, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, IMAGE);
  await Deno.writeTextFile(IMAGE_DONE, new Date().toISOString() + "\n");
}

async function isMounted(path: string): Promise<boolean> {
  const mounts = await Deno.readTextFile("/proc/self/mounts");
  return mounts.split("\n").some((l) => l.split(" ")[1] === path);
}

async function umount(path: string): Promise<void> {
  if (!await isMounted(path)) return;
  const r = await exec("umount", [path], { allowFailure: true });
  if (r.code !== 0) await exec("umount", ["-l", path], { allowFailure: true });
}

// PID 1 of a sandbox host: mounts the kernel file systems, starts sshd and reaps orphans.
const INIT = `#!/usr/bin/python3
# wod sandbox init (PID 1): mounts, sshd, reaper. Written by scripts/backend/sandbox.ts.
import os, socket, subprocess, time
def sh(*a):
    subprocess.run(list(a), check=False)
sh("mount", "-t", "proc", "proc", "/proc")
sh("mount", "-t", "sysfs", "-o", "ro", "sysfs", "/sys")
sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run")
os.makedirs("/dev/shm", exist_ok=True)
sh("mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm")
os.makedirs("/dev/pts", exist_ok=True)
sh("mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620", "devpts", "/dev/pts")
if not os.path.islink("/dev/ptmx"):
    try:
        os.remove("/dev/ptmx")
    except OSError:
        pass
    os.symlink("pts/ptmx", "/dev/ptmx")
socket.sethostname(open("/etc/hostname").read().strip())
os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
log = open("/var/log/sshd.log", "ab")
def start_sshd():
    return subprocess.Popen(["/usr/sbin/sshd", "-D", "-e"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
sshd = start_sshd()
while True:
    try:
        pid, _ = os.waitpid(-1, 0)
        if pid == sshd.pid:
            time.sleep(0.5)
            sshd = start_sshd()
    except ChildProcessError:
        time.sleep(1)
`;

/** Addresses of host `index` in the sandbox's /24: a /29 each (controller, host, two test clients). */
export function linkAddresses(subnet: string, index: number) {
  const base = index * 8;
  return {
    controller: `${subnet}.${base + 1}`,
    host: `${subnet}.${base + 2}`,
    clients: [`${subnet}.${base + 3}`, `${subnet}.${base + 4}`],
    prefix: 29,
  };
}

/**
 * A /24 under 10.231.0.0/16 for this sandbox directory: the one its tag names unless an interface of
 * this machine already has an address in it (another sandbox, anything else), then the next free one.
 */
async function pickSubnet(): Promise<string> {
  const used = (await exec("ip", ["-o", "-4", "addr", "show"])).stdout;
  const start = parseInt(SANDBOX_TAG.slice(0, 2), 16);
  for (let i = 0; i < 256; i++) {
    const subnet = `10.231.${(start + i) % 256}`;
    if (!used.includes(` ${subnet}.`)) return subnet;
  }
  throw new WodError("No free /24 under 10.231.0.0/16 for the sandbox's links: remove unused sandboxes");
}

const ARCHIVES = "var/cache/apt/archives";

/** Hard links to the cached .deb files in a host's upper layer (before its overlay is mounted). */
async function seedAptArchives(upper: string): Promise<void> {
  const dest = join(upper, ARCHIVES);
  await Deno.mkdir(join(dest, "partial"), { recursive: true });
  for await (const e of Deno.readDir(APT_CACHE)) {
    if (!e.isFile || !e.name.endsWith(".deb")) continue;
    await Deno.link(join(APT_CACHE, e.name), join(dest, e.name))
      .catch(() => Deno.copyFile(join(APT_CACHE, e.name), join(dest, e.name)));
  }
}

/** Packages a host downloaded, into the shared cache (atomically: a temporary name, then rename). */
async function harvestAptArchives(upper: string): Promise<void> {
  const src = join(upper, ARCHIVES);
  if (!existsSync(src)) return;
  for await (const e of Deno.readDir(src)) {
    if (!e.isFile || !e.name.endsWith(".deb") || existsSync(join(APT_CACHE, e.name))) continue;
    const tmp = join(APT_CACHE, `.${e.name}.${crypto.randomUUID().slice(0, 8)}`);
    try {
      await Deno.link(join(src, e.name), tmp).catch(() => Deno.copyFile(join(src, e.name), tmp));
      await Deno.rename(tmp, join(APT_CACHE, e.name));
    } catch {
      await Deno.remove(tmp).catch(() => {});
    }
  }
}

function hostDir(name: string): string {
  return join(HOSTS_DIR, name);
}

async function prepareRoot(
  b: SandboxBackend,
  addr: ReturnType<typeof linkAddresses>,
  rootfs: string,
): Promise<string> {
  const r = (p: string) => join(rootfs, p);
  // Fresh host keys per run (the image's would be shared by every sandbox).
  for await (const e of Deno.readDir(r("etc/ssh"))) {
    if (e.name.startsWith("ssh_host_")) await Deno.remove(r(`etc/ssh/${e.name}`));
  }
  await exec("ssh-keygen", [
    "-q",
    "-t",
    "ed25519",
    "-N",
    "",
    "-C",
    `wod-sandbox-${b.name}`,
    "-f",
    r("etc/ssh/ssh_host_ed25519_key"),
  ]);
  const hostPub = (await Deno.readTextFile(r("etc/ssh/ssh_host_ed25519_key.pub"))).trim().split(" ");
  await Deno.writeTextFile(
    r("etc/ssh/sshd_config.d/wod-sandbox.conf"),
    [
      "Port 22",
      `ListenAddress ${addr.host}`,
      "HostKey /etc/ssh/ssh_host_ed25519_key",
      "PermitRootLogin no",
      `AllowUsers ${SANDBOX_SSH_USER}`,
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM yes",
      "MaxSessions 50",
      "MaxStartups 50:30:100",
      "",
    ].join("\n"),
  );
  // The login account: our key, sudo without a password (what an operator gives the controller).
  const u = SANDBOX_SSH_USER;
  if ((await exec("chroot", [rootfs, "id", "-u", u], { allowFailure: true })).code !== 0) {
    await exec("chroot", [rootfs, "useradd", "--create-home", "--shell", "/bin/bash", "--user-group", u]);
  }
  await exec("chroot", [rootfs, "install", "-d", "-m", "0700", "-o", u, "-g", u, `/home/${u}/.ssh`]);
  await Deno.copyFile(`${KEY_FILE}.pub`, r(`home/${u}/.ssh/authorized_keys`));
  await exec("chroot", [rootfs, "chown", `${u}:${u}`, `/home/${u}/.ssh/authorized_keys`]);
  await Deno.chmod(r(`home/${u}/.ssh/authorized_keys`), 0o600);
  await Deno.writeTextFile(r("etc/sudoers.d/wod-sandbox"), `${u} ALL=(ALL:ALL) NOPASSWD: ALL\n`, {
    mode: 0o440,
  });
  await Deno.chmod(r("etc/sudoers.d/wod-sandbox"), 0o440);
  // No service starts from package scripts (there is no init system; the playbook starts them).
  await Deno.writeTextFile(r("usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  await Deno.chmod(r("usr/sbin/policy-rc.d"), 0o755);
  await Deno.writeTextFile(r("usr/local/sbin/wod-sandbox-init"), INIT, { mode: 0o755 });
  await Deno.chmod(r("usr/local/sbin/wod-sandbox-init"), 0o755);
  await Deno.writeTextFile(r("etc/hostname"), `${b.name}\n`);
  await Deno.writeTextFile(
    r("etc/hosts"),
    `127.0.0.1 localhost\n${addr.host} ${b.name}\n::1 localhost\n`,
  );
  // No name service is needed: every way out goes through the registry proxy, which resolves.
  await Deno.writeTextFile(r("etc/resolv.conf"), "");
  await Deno.writeTextFile(r("etc/apt/apt.conf.d/90wod-sandbox"), 'APT::Keep-Downloaded-Packages "true";\n');
  // The way to the package registries (the controller's end of the link), for apt, pip and npm.
  const proxy = `http://${addr.controller}:${PROXY_PORT}`;
  await Deno.writeTextFile(
    r("etc/apt/apt.conf.d/80wod-proxy"),
    `Acquire::http::Proxy "${proxy}/";\nAcquire::https::Proxy "${proxy}/";\nAcquire::http::Pipeline-Depth "0";\n`,
  );
  await Deno.writeTextFile(r("etc/pip.conf"), `[global]\nproxy = ${proxy}\ncache-dir = /var/cache/wod/pip\n`);
  await Deno.writeTextFile(
    r("etc/npmrc"),
    `proxy=${proxy}\nhttps-proxy=${proxy}\ncache=/var/cache/wod/npm\n`,
  );
  const noProxy = `localhost,127.0.0.1,::1,${addr.host},${b.name}`;
  await Deno.writeTextFile(
    r("etc/environment"),
    [
      `http_proxy=${proxy}`,
      `https_proxy=${proxy}`,
      `HTTP_PROXY=${proxy}`,
      `HTTPS_PROXY=${proxy}`,
      `no_proxy=${noProxy}`,
      `NO_PROXY=${noProxy}`,
      "",
    ].join("\n"),
  );
  return `${addr.host} ${hostPub[0]} ${hostPub[1]}\n`;
}

/** The host's network namespace and veth pair, addresses up. */
async function createLink(name: string, index: number, addr: ReturnType<typeof linkAddresses>) {
  const ns = netnsName(name);
  const vh = `wh${SANDBOX_TAG}${index}`;
  const vn = `wn${SANDBOX_TAG}${index}`;
  await exec("ip", ["netns", "add", ns]);
  await exec("ip", ["link", "add", vh, "type", "veth", "peer", "name", vn]);
  await exec("ip", ["link", "set", vn, "netns", ns]);
  for (const a of [addr.controller, ...addr.clients]) {
    await exec("ip", ["addr", "add", `${a}/${addr.prefix}`, "dev", vh]);
  }
  await exec("ip", ["link", "set", vh, "up"]);
  await exec("ip", ["-n", ns, "addr", "add", `${addr.host}/${addr.prefix}`, "dev", vn]);
  await exec("ip", ["-n", ns, "link", "set", vn, "up"]);
  await exec("ip", ["-n", ns, "link", "set", "lo", "up"]);
  return { ns, vh, vn };
}

async function waitForSsh(host: string, key: string, knownHosts: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  let last = "";
  while (Date.now() < deadline) {
    const r = await exec("ssh", [
      ...sshOptions(key, knownHosts, 22),
      `${SANDBOX_SSH_USER}@${host}`,
      "sudo",
      "-n",
      "true",
    ], { allowFailure: true });
    if (r.code === 0) return;
    last = r.stderr.trim();
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new WodError(
    `The sandbox's sshd at ${host}:22 did not let ${SANDBOX_SSH_USER} in with our key (and sudo) within 20 s: ${last}`,
  );
}

export function sshOptions(key: string, knownHosts: string, port: number): string[] {
  return [
    "-i",
    key,
    "-p",
    String(port),
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "ConnectTimeout=5",
  ];
}

/**
 * Run a command as root on a sandbox host: over SSH as the sudo user, then `sudo -n` (argv joined by
 * ssh: callers pass fixed words; a script goes on stdin of `sh`).
 */
export async function sandboxSsh(
  info: Pick<SandboxInfo, "ssh_key" | "known_hosts" | "ssh_port" | "ssh_user" | "host">,
  argv: string[],
  stdin?: string,
) {
  return await exec("ssh", [
    ...sshOptions(info.ssh_key, info.known_hosts, info.ssh_port),
    `${info.ssh_user}@${info.host}`,
    "--",
    "sudo",
    "-n",
    "--",
    ...argv,
  ], {
    allowFailure: true,
    stdin,
  });
}

/** The registry proxy's allowlist: the Debian mirror of this machine, PyPI and npm. */
async function registryHosts(): Promise<string[]> {
  const mirror = new URL(await debianMirror());
  const hosts = [mirror.port ? `${mirror.hostname}:${mirror.port}` : mirror.hostname];
  return [...hosts, "pypi.org", "files.pythonhosted.org", "registry.npmjs.org"];
}

/** The registry proxy, listening on `addresses` (controller sides of links), started detached. */
async function startProxy(addresses: string[]): Promise<{ pid: number; pid_start: string; port: number }> {
  const args = ["run", "--no-config", "--allow-net", `--allow-write=${PROXY_LOG}`];
  args.push(new URL("./registry_proxy.ts", import.meta.url).pathname);
  for (const a of addresses) args.push("--listen", `${a}:${PROXY_PORT}`);
  for (const h of await registryHosts()) args.push("--allow", h);
  args.push("--log", PROXY_LOG);
  const child = spawn("setsid", [Deno.execPath(), ...args], { stdout: "null", stderr: "null" });
  child.unref();
  const pid = child.pid;
  // Listening when every address accepts a connection.
  const deadline = Date.now() + 10_000;
  for (const a of addresses) {
    for (;;) {
      try {
        (await Deno.connect({ hostname: a, port: PROXY_PORT })).close();
        break;
      } catch (e) {
        if (Date.now() > deadline || !processStart(pid)) {
          throw new WodError(
            `The sandbox's registry proxy did not listen on ${a}:${PROXY_PORT}: ` +
              `${(e as Error).message} (log: ${PROXY_LOG})`,
          );
        }
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  }
  return { pid, pid_start: processStart(pid) ?? "", port: PROXY_PORT };
}

/** Install-playbook variables common to every sandbox host (no systemd, kernels to test with). */
function sandboxVars(): Record<string, unknown> {
  const vars: Record<string, unknown> = {
    wod_backend_service_manager: "sandbox",
    wod_backend_hub_port: SANDBOX_HUB_PORT,
    wod_backend_fail2ban_sshd_jail: false,
    wod_backend_fail2ban_nft_table: sandboxNftTable(),
  };
  const deno = Deno.execPath();
  if (deno && existsSync(deno)) {
    vars.wod_backend_kernels_extra = [{
      name: "deno",
      display_name: "Deno",
      language: "typescript",
      binaries: [{ src: Deno.realPathSync(deno), dest: "/usr/local/bin/deno" }],
      argv: ["/usr/local/bin/deno", "jupyter", "--kernel", "--conn", "{connection_file}"],
    }];
  }
  return vars;
}

/**
 * Variables of one host: its own addresses. (The pool, uid base and admin user come from the `local`
 * environment's values, the same table `wod install` passes.)
 */
function hostVars(h: SandboxHostState): Record<string, unknown> {
  const bundle = join(hostDir(h.name), "root", CA_BUNDLE_IN_HOST);
  return {
    wod_backend_token_fetch_dest: h.hub_token_file,
    wod_backend_fail2ban_ignoreip: [`${h.controller_address}/32`, "127.0.0.1/32", "::1"],
    // The public entry: nginx on 443/80 at the host's own address, with the sandbox CA's pair.
    wod_backend_tls_cert_src: join(TLS_DIR, "server.pem"),
    wod_backend_tls_key_src: join(TLS_DIR, "server.key"),
    // apt, pip and npm through the registry proxy on the controller's side of the link.
    wod_backend_http_proxy: `http://${h.controller_address}:${PROXY_PORT}`,
    ...(existsSync(bundle) ? { wod_backend_ca_bundle: `/${CA_BUNDLE_IN_HOST}` } : {}),
  };
}

/** The platform variables of a sandbox host's install (addresses, no systemd), for `wod install`. */
export function sandboxInstallVars(backend: string): Record<string, unknown> {
  const s = readSandboxStateSync();
  const h = s?.hosts.find((x) => x.name === backend);
  if (!s || !h || !hostsAlive(s)) {
    throw new WodError("The sandbox is not running: run `deno task wod sandbox up`");
  }
  return { ...sandboxVars(), ...hostVars(h) };
}

/** Run the project's install (`wod install`'s function, with the `local` environment's values) on every host. */
export async function installSandbox(log: Log = () => {}): Promise<{ changed: number; seconds: number }> {
  const s = readSandboxStateSync();
  if (!s || !hostsAlive(s)) throw new WodError("The sandbox is not running: run `deno task wod sandbox up`");
  return await installHosts(s, s.hosts, log);
}

/** The install targets of sandbox hosts: the `local` environment's values plus each host's own. */
async function sandboxTargets(s: SandboxFileState, hosts: SandboxHostState[]): Promise<InstallTarget[]> {
  const env = (await loadConfig(CODE_ROOT)).environments.get("local")?.value;
  return hosts.map((h) => {
    const b = env?.backends.find((x) => x.name === h.name);
    return {
      name: h.name,
      host: {
        name: h.name,
        host: h.host,
        port: h.ssh_port,
        user: s.ssh_user,
        keyFile: s.ssh_key,
        knownHostsFile: s.known_hosts,
      },
      vars: { ...(env && b ? environmentInstallVars(env, b) : {}), ...sandboxVars(), ...hostVars(h) },
    };
  });
}

async function installHosts(
  s: SandboxFileState,
  hosts: SandboxHostState[],
  log: Log,
): Promise<{ changed: number; seconds: number }> {
  const started = performance.now();
  const results = await installBackends(await sandboxTargets(s, hosts), {
    logDir: join(SANDBOX_DIR, "install-logs"),
    log,
  });
  for (const h of hosts) {
    await harvestAptArchives(join(hostDir(h.name), "upper"));
    // The fetched service token: this machine's root only.
    if (existsSync(h.hub_token_file)) await Deno.chmod(h.hub_token_file, 0o600);
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    throw new WodError(
      `The install playbook failed on the sandbox: ${
        failed.map((r) => `${r.backend}: ${r.error}`).join("; ")
      }`,
    );
  }
  return {
    changed: results.reduce((n, r) => n + r.changed, 0),
    seconds: (performance.now() - started) / 1000,
  };
}

/** The running hosts, with the registry proxy restarted and broken hubs repaired where needed. */
async function reuseRunning(cur: SandboxFileState, log: Log): Promise<SandboxInfo[]> {
  if (!cur.proxy || !alive(cur.proxy.pid, cur.proxy.pid_start)) {
    log("sandbox: the registry proxy was not running: starting it");
    cur.proxy = await startProxy(cur.hosts.map((h) => h.controller_address));
    await writeState(cur);
  }
  // Installed and every hub answers: nothing to do; otherwise the install playbook repairs them.
  const broken = [];
  for (const h of cur.hosts) if (!h.installed || !await hubAnswers(h.hub_url)) broken.push(h);
  if (broken.length) {
    await installHosts(cur, broken, log);
    for (const h of broken) h.installed = true;
    await writeState(cur);
  }
  return cur.hosts.map((h) => infoOf(cur, h));
}

/** Mount one host's root (the image under an overlay), link its namespace and start its init. */
async function startHost(
  b: SandboxBackend,
  index: number,
  subnet: string,
): Promise<{ knownHosts: string; host: SandboxHostState }> {
  const dir = hostDir(b.name);
  const [rootfs, upper, work] = ["root", "upper", "work"].map((x) => join(dir, x));
  for (const d of [rootfs, upper, work]) await Deno.mkdir(d, { recursive: true });
  await seedAptArchives(upper);
  await exec("mount", [
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${IMAGE},upperdir=${upper},workdir=${work}`,
    rootfs,
  ]);
  for (const [src, dest] of MOUNTS) {
    await Deno.mkdir(join(rootfs, dest), { recursive: true });
    await exec("mount", ["--bind", src, join(rootfs, dest)]);
  }
  const addr = linkAddresses(subnet, index);
  const knownHosts = await prepareRoot(b, addr, rootfs);
  copyCaBundle(rootfs);
  const link = await createLink(b.name, index, addr);
  const child = spawn("setsid", [
    "ip",
    "netns",
    "exec",
    link.ns,
    "unshare",
    "--mount",
    "--pid",
    "--uts",
    "--ipc",
    "--fork",
    "--kill-child",
    "chroot",
    rootfs,
    "/usr/local/sbin/wod-sandbox-init",
  ], { stdout: "null", stderr: "null" });
  child.unref();
  await new Promise((res) => setTimeout(res, 100));
  const pidStart = processStart(child.pid);
  if (!pidStart) {
    throw new WodError(
      `The sandbox host ${b.name}'s namespace process exited at once (unshare/chroot failed)`,
    );
  }
  return {
    knownHosts,
    host: {
      name: b.name,
      index,
      netns: link.ns,
      veth_host: link.vh,
      veth_ns: link.vn,
      host: addr.host,
      controller_address: addr.controller,
      client_addresses: addr.clients,
      ssh_port: 22,
      hub_url: `https://${addr.host}`,
      hub_token_file: join(dir, "hub-service-token"),
      pid: child.pid,
      pid_start: pidStart,
      installed: false,
    },
  };
}

async function upLocked(log: Log): Promise<SandboxInfo[]> {
  requireRoot();
  const backends = localSandboxBackends();
  const cur = readSandboxStateSync();
  if (
    cur && hostsAlive(cur) && cur.hosts.length === backends.length &&
    cur.hosts.every((h, i) => h.name === backends[i].name)
  ) {
    return await reuseRunning(cur, log);
  }
  await ensureImage(log);
  for (const tool of ["unshare", "chroot", "ip"]) {
    if (!which(tool)) {
      throw new WodError(
        `${tool} is needed for the sandbox (packages util-linux, coreutils, iproute2): not found in PATH`,
      );
    }
  }
  await teardown();
  await Deno.mkdir(SANDBOX_DIR, { recursive: true, mode: 0o700 });
  await Deno.chmod(SANDBOX_DIR, 0o700);
  for (const d of [APT_CACHE, ...MOUNTS.map(([src]) => src)]) await Deno.mkdir(d, { recursive: true });
  if (!existsSync(KEY_FILE)) {
    await exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "wod-sandbox", "-f", KEY_FILE]);
  }
  const subnet = await pickSubnet();
  await sandboxTls(backends.map((_, i) => linkAddresses(subnet, i).host));
  const s: SandboxFileState = {
    version: 2,
    tag: SANDBOX_TAG,
    subnet,
    ssh_user: SANDBOX_SSH_USER,
    ssh_key: KEY_FILE,
    known_hosts: KNOWN_HOSTS,
    hosts: [],
  };
  let knownHosts = "";
  for (const [index, b] of backends.entries()) {
    const started = await startHost(b, index, subnet);
    knownHosts += started.knownHosts;
    s.hosts.push(started.host);
    await writeState(s);
  }
  await Deno.writeTextFile(KNOWN_HOSTS, knownHosts, { mode: 0o600 });
  s.proxy = await startProxy(s.hosts.map((h) => h.controller_address));
  await writeState(s);
  for (const h of s.hosts) await waitForSsh(h.host, KEY_FILE, KNOWN_HOSTS);
  log(
    `sandbox: ${s.hosts.length} host(s) up (${
      s.hosts.map((h) => `${h.name} ${h.host}`).join(", ")
    }); running the install playbook`,
  );
  const inst = await installHosts(s, s.hosts, log);
  log(`sandbox: installed in ${inst.seconds.toFixed(1)} s`);
  for (const h of s.hosts) h.installed = true;
  await writeState(s);
  return s.hosts.map((h) => infoOf(s, h));
}

/** Bring every sandbox host up (or return the running ones). Safe for concurrent callers. */
export async function sandboxUp(log: Log = () => {}): Promise<SandboxInfo[]> {
  requireRoot();
  return await withLock(() => upLocked(log));
}

/** For tests: every sandbox host, brought up and installed once. */
export async function ensureSandboxHosts(log: Log = () => {}): Promise<SandboxInfo[]> {
  const hosts = sandboxHosts();
  if (hosts && (await Promise.all(hosts.map((h) => hubAnswers(h.hub_url)))).every((x) => x)) return hosts;
  return await sandboxUp(log);
}

/** For tests: the first sandbox host (backend jup1 of environments/local.yaml), all of them up. */
export async function ensureSandbox(log: Log = () => {}): Promise<SandboxInfo> {
  return (await ensureSandboxHosts(log))[0];
}

// ---------- the control host: one more host, not a backend, only when asked for ----------

/** Name (hostname, namespace, host directory) of the control host; no backend may take it. */
export const SANDBOX_CONTROL_NAME = "ctl";
/** Its link's index in the sandbox's /24: the last /29 (backends use 0-29, at most 30 of them). */
const CONTROL_INDEX = 31;

/** How to reach the control host: SSH as the sandbox's sudo user, with the sandbox's key and known_hosts. */
export type SandboxControlInfo = Pick<
  SandboxInfo,
  "name" | "host" | "ssh_port" | "ssh_user" | "ssh_key" | "known_hosts" | "controller_address" | "pid"
>;

function controlInfo(s: SandboxFileState, h: SandboxHostState): SandboxControlInfo {
  return {
    name: h.name,
    host: h.host,
    ssh_port: h.ssh_port,
    ssh_user: s.ssh_user,
    ssh_key: s.ssh_key,
    known_hosts: s.known_hosts,
    controller_address: h.controller_address,
    pid: h.pid,
  };
}

/** Stop the control host (its processes by PID, its link, namespace and mounts); the backends stay. */
async function stopControl(s: SandboxFileState): Promise<void> {
  if (s.control) {
    await killAndWait(s.control.host.pid, s.control.host.pid_start);
    await killAndWait(s.control.proxy.pid, s.control.proxy.pid_start);
  }
  await exec("ip", ["link", "del", `wh${SANDBOX_TAG}${CONTROL_INDEX}`], { allowFailure: true });
  await exec("ip", ["netns", "del", netnsName(SANDBOX_CONTROL_NAME)], { allowFailure: true });
  const dir = hostDir(SANDBOX_CONTROL_NAME);
  for (const [, dest] of MOUNTS) await umount(join(dir, "root", dest));
  await umount(join(dir, "root"));
  for (const d of ["upper", "work"]) await Deno.remove(join(dir, d), { recursive: true }).catch(() => {});
  delete s.control;
}

/** git on the control host (from the apt cache or through its registry proxy) unless it has it. */
const CONTROL_GIT = `set -e
command -v git >/dev/null 2>&1 && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends git >/dev/null 2>&1 ||
  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends git >/dev/null; }
`;

async function controlLocked(log: Log): Promise<SandboxControlInfo> {
  const s = readSandboxStateSync();
  if (!s || s.hosts.length === 0 || !hostsAlive(s)) {
    throw new WodError("The sandbox is not running: run `deno task wod sandbox up` before its control host");
  }
  const c = s.control;
  if (c && alive(c.host.pid, c.host.pid_start) && alive(c.proxy.pid, c.proxy.pid_start)) {
    return controlInfo(s, c.host);
  }
  if (s.hosts.some((h) => h.name === SANDBOX_CONTROL_NAME)) {
    throw new WodError(
      `A sandbox backend is named "${SANDBOX_CONTROL_NAME}", the control host's name: rename it in environments/local.yaml`,
    );
  }
  await stopControl(s);
  const b = { name: SANDBOX_CONTROL_NAME, students: [1, 1] as [number, number], uid_base: 0, admin_user: "" };
  const started = await startHost(b, CONTROL_INDEX, s.subnet);
  const host = { ...started.host, hub_url: "", installed: true };
  const others = (await Deno.readTextFile(s.known_hosts).catch(() => "")).split("\n")
    .filter((l) => l && !l.startsWith(`${host.host} `));
  await Deno.writeTextFile(s.known_hosts, [...others, started.knownHosts.trim(), ""].join("\n"), {
    mode: 0o600,
  });
  s.control = { host, proxy: await startProxy([host.controller_address]) };
  await writeState(s);
  await waitForSsh(host.host, s.ssh_key, s.known_hosts);
  const info = controlInfo(s, host);
  const r = await sandboxSsh(info, ["sh"], CONTROL_GIT);
  if (r.code !== 0) {
    throw new WodError(
      `Installing git on the sandbox's control host ${host.host} failed (exit ${r.code}): ${
        r.stderr.trim().split("\n").slice(-3).join(" ")
      }; see the registry proxy's log ${PROXY_LOG}`,
    );
  }
  await harvestAptArchives(join(hostDir(SANDBOX_CONTROL_NAME), "upper"));
  log(`sandbox: control host ${SANDBOX_CONTROL_NAME} up at ${host.host} (sshd, git)`);
  return info;
}

/**
 * The sandbox's control host (not a backend): one more Debian host in its own network namespace with
 * sshd on :22 (the sandbox's sudo user, key and known_hosts) and git, for a state remote reached over
 * SSH (`bench production`). Brought up on request only, after the backends (brought up if needed); a
 * second call returns the running one; `wod sandbox down` stops it with the rest.
 */
export async function ensureSandboxControlHost(log: Log = () => {}): Promise<SandboxControlInfo> {
  requireRoot();
  await ensureSandboxHosts(log);
  return await withLock(() => controlLocked(log));
}

async function hubAnswers(hubUrl: string): Promise<boolean> {
  try {
    const r = await hubFetch(`${hubUrl}/hub/api/`, { signal: AbortSignal.timeout(5000) });
    await r.body?.cancel();
    return r.status === 200;
  } catch {
    return false;
  }
}

async function killAndWait(pid: number, start: string): Promise<boolean> {
  if (!alive(pid, start)) return false;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone already */ }
  const deadline = Date.now() + 10_000;
  while (alive(pid, start) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  return true;
}

/**
 * Stop everything of THIS sandbox directory: its host processes and proxy (by PID), its links and
 * namespaces (by the directory's tag), its mounts and per-run layers. Also what the one-host layout
 * of earlier versions left (SANDBOX_DIR/root).
 */
async function teardown(): Promise<boolean> {
  let stopped = false;
  let raw: Record<string, unknown> | undefined;
  try {
    raw = JSON.parse(await Deno.readTextFile(SANDBOX_STATE_FILE));
  } catch { /* none */ }
  const s = readSandboxStateSync();
  if (s) {
    for (const h of s.hosts) if (await killAndWait(h.pid, h.pid_start)) stopped = true;
    if (s.proxy) await killAndWait(s.proxy.pid, s.proxy.pid_start);
    if (s.control) {
      await killAndWait(s.control.host.pid, s.control.host.pid_start);
      await killAndWait(s.control.proxy.pid, s.control.proxy.pid_start);
    }
  } else if (raw && typeof raw.pid === "number" && typeof raw.pid_start === "string") {
    // The one-host layout shared this machine's network: drop the ban table its fail2ban made.
    const legacyRoot = join(SANDBOX_DIR, "root");
    if (
      alive(raw.pid, raw.pid_start) && typeof raw.hub_url === "string" &&
      existsSync(join(legacyRoot, "usr/sbin/nft"))
    ) {
      const table = `wod-sandbox-f2b-${new URL(raw.hub_url).port}`;
      await exec("chroot", [legacyRoot, "/usr/sbin/nft", "delete", "table", "inet", table], {
        allowFailure: true,
      });
    }
    stopped = await killAndWait(raw.pid, raw.pid_start);
  }
  // Links and namespaces named after this directory's tag (also those a failed `up` left behind).
  const links = (await exec("ip", ["-o", "link", "show"], { allowFailure: true })).stdout;
  for (const m of links.matchAll(new RegExp(`^\\d+: (wh${SANDBOX_TAG}\\d+)[@:]`, "gm"))) {
    await exec("ip", ["link", "del", m[1]], { allowFailure: true });
  }
  const nss = (await exec("ip", ["netns", "list"], { allowFailure: true })).stdout;
  for (const line of nss.split("\n")) {
    const ns = line.split(" ")[0];
    if (ns.startsWith(`wod-${SANDBOX_TAG}-`)) await exec("ip", ["netns", "del", ns], { allowFailure: true });
  }
  // Per-run layers only: upper and work dirs (never mount points), then the emptied mount points;
  // nothing is removed recursively through a mount that could not be unmounted.
  const dirs: string[] = [SANDBOX_DIR];
  if (existsSync(HOSTS_DIR)) {
    for await (const e of Deno.readDir(HOSTS_DIR)) if (e.isDirectory) dirs.push(join(HOSTS_DIR, e.name));
  }
  for (const dir of dirs) {
    const root = join(dir, "root");
    for (const dest of [ARCHIVES, ...MOUNTS.map(([, d]) => d)]) await umount(join(root, dest));
    await umount(root);
    for (const d of ["upper", "work"]) await Deno.remove(join(dir, d), { recursive: true }).catch(() => {});
    await Deno.remove(root).catch(() => {});
    if (dir !== SANDBOX_DIR) {
      await Deno.remove(join(dir, "hub-service-token")).catch(() => {});
      await Deno.remove(dir).catch(() => {});
    }
  }
  await Deno.remove(HOSTS_DIR).catch(() => {});
  for (const f of [SANDBOX_STATE_FILE, KNOWN_HOSTS, join(SANDBOX_DIR, "hub-service-token")]) {
    await Deno.remove(TLS_DIR, { recursive: true }).catch(() => {});
    await Deno.remove(f).catch(() => {});
  }
  return stopped;
}

/** Stop the sandbox hosts and drop their per-run layers (the image and download caches stay). */
export async function sandboxDown(): Promise<boolean> {
  requireRoot();
  if (!existsSync(SANDBOX_DIR)) return false;
  return await withLock(teardown);
}

// ---------- the public entry of the sandbox's hosts: TLS ----------

/** Where a host keeps this machine's CA bundle (relative to its root). */
const CA_BUNDLE_IN_HOST = "etc/wod-sandbox-ca-bundle.pem";

/**
 * This machine may reach PyPI and npm through a TLS-inspecting egress whose CA only its own trust store
 * holds: a sandbox host's pip and npm trust that store too (like a host behind such a proxy).
 */
function copyCaBundle(rootfs: string): void {
  const hostBundle = "/etc/ssl/certs/ca-certificates.crt";
  if (existsSync(hostBundle)) Deno.copyFileSync(hostBundle, join(rootfs, CA_BUNDLE_IN_HOST));
}

/**
 * A self-signed CA and a server certificate it signs for the sandbox's hosts (their addresses, localhost),
 * made once per run in SANDBOX_DIR/tls. Controller code trusts ca.pem for hub requests (trustHubCa).
 */
export async function sandboxTls(ips: string[] = []): Promise<{ ca: string; cert: string; key: string }> {
  const ca = join(TLS_DIR, "ca.pem");
  const cert = join(TLS_DIR, "server.pem");
  const key = join(TLS_DIR, "server.key");
  if (existsSync(ca) && existsSync(cert) && existsSync(key)) return { ca, cert, key };
  await Deno.mkdir(TLS_DIR, { recursive: true, mode: 0o700 });
  const caKey = join(TLS_DIR, "ca.key");
  const csr = join(TLS_DIR, "server.csr");
  const ext = join(TLS_DIR, "server.ext");
  const ossl = (args: string[]) => exec("openssl", args);
  await ossl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", caKey]);
  await ossl([
    "req",
    "-x509",
    "-new",
    "-key",
    caKey,
    "-days",
    "30",
    "-subj",
    "/CN=wod sandbox CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-out",
    ca,
  ]);
  await ossl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key]);
  await ossl(["req", "-new", "-key", key, "-subj", "/CN=127.0.0.1", "-out", csr]);
  await Deno.writeTextFile(
    ext,
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n" +
      `subjectAltName=${["IP:127.0.0.1", "DNS:localhost", ...ips.map((ip) => `IP:${ip}`)].join(",")}\n`,
  );
  await ossl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca,
    "-CAkey",
    caKey,
    "-CAcreateserial",
    "-days",
    "30",
    "-extfile",
    ext,
    "-out",
    cert,
  ]);
  for (const f of [caKey, key]) await Deno.chmod(f, 0o600);
  return { ca, cert, key };
}
