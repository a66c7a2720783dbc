// The sandbox: a disposable Debian backend host on this machine (TESTBED.md). A debootstrap image
// cached on disk, an overlay per run, own mount/pid/uts/ipc namespaces, sshd on a free loopback port
// with a host key pinned in a known_hosts file we write; then the project's install playbook.
// One shared sandbox per machine (state in SANDBOX_DIR), guarded by a file lock so concurrent test
// processes calling ensureSandbox() get the same host.
import { join } from "node:path";
import { existsSync } from "node:fs";
import { WodError } from "../common/errors.ts";
import { exec, spawn } from "../common/exec.ts";
import { freePort } from "../common/net.ts";
import { failureReason, runPlaybook } from "./ansible.ts";
import { hubFetch, trustHubCa } from "./hub.ts";

export const SANDBOX_DIR = Deno.env.get("WOD_SANDBOX_DIR") ?? "/var/lib/wod/sandbox";
export const IMAGE_CACHE = Deno.env.get("WOD_SANDBOX_CACHE") ?? "/var/cache/wod/sandbox";
const SUITE = "bookworm";
const IMAGE = join(IMAGE_CACHE, SUITE);
const IMAGE_DONE = join(IMAGE, ".wod-image-complete");
const APT_CACHE = join(IMAGE_CACHE, "apt-archives");
/** pip's and npm's download caches, shared by every sandbox run (the role's /var/cache/wod). */
const DOWNLOAD_CACHE = join(IMAGE_CACHE, "downloads");
const TLS_DIR = join(SANDBOX_DIR, "tls");
const ROOTFS = join(SANDBOX_DIR, "root");
const UPPER = join(SANDBOX_DIR, "upper");
const WORK = join(SANDBOX_DIR, "work");
const STATE_FILE = join(SANDBOX_DIR, "state.json");
const LOCK_FILE = join(SANDBOX_DIR, "lock");
/** nftables table the sandbox's fail2ban bans into: the host network is shared, so the name is
 * unique per sandbox (its hub port) and the table is removed on down. */
export function sandboxNftTable(info: { hub_url: string }): string {
  return `wod-sandbox-f2b-${new URL(info.hub_url).port}`;
}

export interface SandboxInfo {
  host: "127.0.0.1";
  ssh_port: number;
  ssh_user: "root";
  ssh_key: string;
  known_hosts: string;
  hub_url: string;
  hub_token_file: string;
  /** The CA the hub's TLS certificate is signed by (trust it for hub_url). */
  ca_file: string;
  /** The hub's plain-HTTP entry (redirects to hub_url). */
  hub_http_url: string;
  pid: number;
}

interface SandboxState extends Omit<SandboxInfo, "hub_http_url"> {
  https_port: number;
  http_port: number;
  pid_start: string;
  hub_port: number;
  hub_internal_port: number;
  proxy_api_port: number;
  installed: boolean;
}

export type Log = (line: string) => void;

function processStart(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

async function readState(): Promise<SandboxState | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(STATE_FILE)) as SandboxState;
  } catch {
    return undefined;
  }
}

function alive(s: SandboxState): boolean {
  return processStart(s.pid) === s.pid_start;
}

function publicInfo(s: SandboxState): SandboxInfo {
  // Whoever is handed the sandbox's hub URL can call it: its CA is trusted for hub requests.
  trustHubCa(s.ca_file);
  return {
    host: "127.0.0.1",
    ssh_port: s.ssh_port,
    ssh_user: "root",
    ssh_key: s.ssh_key,
    known_hosts: s.known_hosts,
    hub_url: s.hub_url,
    hub_token_file: s.hub_token_file,
    ca_file: s.ca_file,
    hub_http_url: `http://127.0.0.1:${s.http_port}`,
    pid: s.pid,
  };
}

/** The running, installed sandbox, or undefined. */
export async function sandboxStatus(): Promise<SandboxInfo | undefined> {
  const s = await readState();
  return s && s.installed && alive(s) ? publicInfo(s) : undefined;
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

async function unmountAll(): Promise<void> {
  for (const p of [join(ROOTFS, "var/cache/apt/archives"), join(ROOTFS, "var/cache/wod"), ROOTFS]) {
    if (await isMounted(p)) {
      const r = await exec("umount", [p], { allowFailure: true });
      if (r.code !== 0) await exec("umount", ["-l", p], { allowFailure: true });
    }
  }
}

// PID 1 of the sandbox: mounts the kernel file systems, starts sshd and reaps orphans.
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
socket.sethostname("wod-sandbox")
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

async function prepareRoot(sshPort: number, key: string, knownHosts: string): Promise<void> {
  const r = (p: string) => join(ROOTFS, p);
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
    "wod-sandbox",
    "-f",
    r("etc/ssh/ssh_host_ed25519_key"),
  ]);
  const hostPub = (await Deno.readTextFile(r("etc/ssh/ssh_host_ed25519_key.pub"))).trim().split(" ");
  await Deno.writeTextFile(knownHosts, `[127.0.0.1]:${sshPort} ${hostPub[0]} ${hostPub[1]}\n`, {
    mode: 0o600,
  });
  await Deno.writeTextFile(
    r("etc/ssh/sshd_config.d/wod-sandbox.conf"),
    [
      `Port ${sshPort}`,
      "ListenAddress 127.0.0.1",
      "HostKey /etc/ssh/ssh_host_ed25519_key",
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM yes",
      "MaxSessions 50",
      "MaxStartups 50:30:100",
      "",
    ].join("\n"),
  );
  await Deno.mkdir(r("root/.ssh"), { recursive: true, mode: 0o700 });
  await Deno.copyFile(`${key}.pub`, r("root/.ssh/authorized_keys"));
  await Deno.chmod(r("root/.ssh/authorized_keys"), 0o600);
  // No service starts from package scripts (there is no init system; the playbook starts them).
  await Deno.writeTextFile(r("usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  await Deno.chmod(r("usr/sbin/policy-rc.d"), 0o755);
  await Deno.writeTextFile(r("usr/local/sbin/wod-sandbox-init"), INIT, { mode: 0o755 });
  await Deno.chmod(r("usr/local/sbin/wod-sandbox-init"), 0o755);
  await Deno.writeTextFile(r("etc/hostname"), "wod-sandbox\n");
  await Deno.writeTextFile(r("etc/hosts"), "127.0.0.1 localhost\n127.0.1.1 wod-sandbox\n::1 localhost\n");
  try {
    await Deno.writeTextFile(r("etc/resolv.conf"), await Deno.readTextFile("/etc/resolv.conf"));
  } catch { /* no resolver config on the host */ }
  await Deno.writeTextFile(r("etc/apt/apt.conf.d/90wod-sandbox"), 'APT::Keep-Downloaded-Packages "true";\n');
}

async function waitForSsh(port: number, key: string, knownHosts: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  let last = "";
  while (Date.now() < deadline) {
    const r = await exec("ssh", [
      ...sshOptions(key, knownHosts, port),
      "root@127.0.0.1",
      "true",
    ], { allowFailure: true });
    if (r.code === 0) return;
    last = r.stderr.trim();
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new WodError(`The sandbox's sshd on 127.0.0.1:${port} did not accept our key within 20 s: ${last}`);
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

/** Run a command inside the sandbox as root over SSH (argv joined by ssh: callers pass fixed words). */
export async function sandboxSsh(info: SandboxInfo, argv: string[], stdin?: string) {
  return await exec("ssh", [
    ...sshOptions(info.ssh_key, info.known_hosts, info.ssh_port),
    "root@127.0.0.1",
    "--",
    ...argv,
  ], {
    allowFailure: true,
    stdin,
  });
}

/** Install-playbook variables for the sandbox host (ports, no systemd, kernels to test with). */
function sandboxVars(s: SandboxState): Record<string, unknown> {
  const vars: Record<string, unknown> = {
    wod_backend_service_manager: "sandbox",
    wod_backend_hub_port: s.hub_port,
    wod_backend_hub_internal_port: s.hub_internal_port,
    wod_backend_proxy_api_port: s.proxy_api_port,
    wod_backend_token_fetch_dest: s.hub_token_file,
    wod_backend_fail2ban_sshd_jail: false,
    wod_backend_fail2ban_ignoreip: ["127.0.0.1/32", "::1"],
    wod_backend_fail2ban_nft_table: sandboxNftTable(s),
    ...sandboxEntryVars(s),
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

/** Run the project's install playbook against the sandbox. */
export async function installSandbox(log: Log = () => {}): Promise<{ changed: number; seconds: number }> {
  const s = await readState();
  if (!s || !alive(s)) throw new WodError("The sandbox is not running: run `deno task wod sandbox up`");
  const run = await runPlaybook({
    playbook: "install.yml",
    hosts: [{
      name: "jup1",
      host: "127.0.0.1",
      port: s.ssh_port,
      user: "root",
      keyFile: s.ssh_key,
      knownHostsFile: s.known_hosts,
    }],
    extraVars: sandboxVars(s),
    log,
  });
  if (!run.ok) throw new WodError(`The install playbook failed on the sandbox: ${failureReason(run)}`);
  for (const t of run.tasks) if (t.changed) log(`install.yml ${t.host}: changed: ${t.task}`);
  return { changed: Object.values(run.stats).reduce((n, x) => n + x.changed, 0), seconds: run.seconds };
}

async function upLocked(log: Log): Promise<SandboxInfo> {
  requireRoot();
  const cur = await readState();
  if (cur && alive(cur)) {
    // Installed and the hub answers: nothing to do; otherwise the install playbook repairs it.
    if (cur.installed && await hubAnswers(cur.hub_url)) return publicInfo(cur);
    await installSandbox(log);
    cur.installed = true;
    await Deno.writeTextFile(STATE_FILE, JSON.stringify(cur, null, 2), { mode: 0o600 });
    return publicInfo(cur);
  }
  await ensureImage(log);
  if (!which("unshare") || !which("chroot")) {
    throw new WodError(
      "unshare and chroot (util-linux, coreutils) are needed for the sandbox: not found in PATH",
    );
  }
  await teardown();
  await Deno.mkdir(SANDBOX_DIR, { recursive: true, mode: 0o700 });
  await Deno.chmod(SANDBOX_DIR, 0o700);
  for (const d of [ROOTFS, UPPER, WORK, APT_CACHE]) await Deno.mkdir(d, { recursive: true });
  await exec("mount", [
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${IMAGE},upperdir=${UPPER},workdir=${WORK}`,
    ROOTFS,
  ]);
  await Deno.mkdir(join(ROOTFS, "var/cache/apt/archives"), { recursive: true });
  await exec("mount", ["--bind", APT_CACHE, join(ROOTFS, "var/cache/apt/archives")]);
  await mountDownloadCache();
  const key = join(SANDBOX_DIR, "id_ed25519");
  if (!existsSync(key)) {
    await exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "wod-sandbox-root", "-f", key]);
  }
  const knownHosts = join(SANDBOX_DIR, "known_hosts");
  const [sshPort, hubPort, hubInternal, proxyApi, httpsPort, httpPort] = [
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ];
  await sandboxTls();
  await prepareRoot(sshPort, key, knownHosts);
  const child = spawn("setsid", [
    "unshare",
    "--mount",
    "--pid",
    "--uts",
    "--ipc",
    "--fork",
    "--kill-child",
    "chroot",
    ROOTFS,
    "/usr/local/sbin/wod-sandbox-init",
  ], { stdout: "null", stderr: "null" });
  child.unref();
  const pid = child.pid;
  await new Promise((res) => setTimeout(res, 100));
  const pidStart = processStart(pid);
  if (!pidStart) throw new WodError("The sandbox's namespace process exited at once (unshare/chroot failed)");
  const s: SandboxState = {
    host: "127.0.0.1",
    ssh_port: sshPort,
    ssh_user: "root",
    ssh_key: key,
    known_hosts: knownHosts,
    hub_url: `https://127.0.0.1:${httpsPort}`,
    hub_token_file: join(SANDBOX_DIR, "hub-service-token"),
    ca_file: join(TLS_DIR, "ca.pem"),
    https_port: httpsPort,
    http_port: httpPort,
    pid,
    pid_start: pidStart,
    hub_port: hubPort,
    hub_internal_port: hubInternal,
    proxy_api_port: proxyApi,
    installed: false,
  };
  await Deno.writeTextFile(STATE_FILE, JSON.stringify(s, null, 2), { mode: 0o600 });
  await waitForSsh(sshPort, key, knownHosts);
  log(`sandbox: host up (pid ${pid}, ssh 127.0.0.1:${sshPort}); running the install playbook`);
  const inst = await installSandbox(log);
  log(`sandbox: installed in ${inst.seconds.toFixed(1)} s`);
  s.installed = true;
  await Deno.writeTextFile(STATE_FILE, JSON.stringify(s, null, 2), { mode: 0o600 });
  return publicInfo(s);
}

/** Bring the shared sandbox up (or return the running one). Safe for concurrent callers. */
export async function sandboxUp(log: Log = () => {}): Promise<SandboxInfo> {
  requireRoot();
  return await withLock(() => upLocked(log));
}

/** For tests: the shared sandbox, brought up and installed once. */
export async function ensureSandbox(log: Log = () => {}): Promise<SandboxInfo> {
  const s = await sandboxStatus();
  if (s && await hubAnswers(s.hub_url)) return s;
  return await sandboxUp(log);
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

async function teardown(): Promise<boolean> {
  const s = await readState();
  let stopped = false;
  if (s && alive(s)) {
    // The host network is shared: remove the ban table the sandbox's fail2ban may have created.
    if (existsSync(join(ROOTFS, "usr/sbin/nft"))) {
      await exec("chroot", [ROOTFS, "/usr/sbin/nft", "delete", "table", "inet", sandboxNftTable(s)], {
        allowFailure: true,
      });
    }
    try {
      Deno.kill(s.pid, "SIGKILL");
    } catch { /* gone already */ }
    const deadline = Date.now() + 10_000;
    while (processStart(s.pid) === s.pid_start && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
    }
    stopped = true;
  }
  await unmountAll();
  for (const d of [UPPER, WORK, TLS_DIR]) await Deno.remove(d, { recursive: true }).catch(() => {});
  for (const f of [STATE_FILE, join(SANDBOX_DIR, "known_hosts"), join(SANDBOX_DIR, "hub-service-token")]) {
    await Deno.remove(f).catch(() => {});
  }
  return stopped;
}

/** Stop the sandbox and drop its per-run layer (the image cache stays). */
export async function sandboxDown(): Promise<boolean> {
  requireRoot();
  if (!existsSync(SANDBOX_DIR)) return false;
  return await withLock(teardown);
}

// ---------- the public entry of the sandbox's hosts: TLS, ports, download cache ----------

/** Install variables of the sandbox's public entry: nginx on free loopback ports with its own pair. */
function sandboxEntryVars(s: SandboxState): Record<string, unknown> {
  // This machine may reach PyPI and npm through a TLS-inspecting egress whose CA only its own trust
  // store holds: the sandbox's pip and npm trust that store too (like a host behind such a proxy).
  const hostBundle = "/etc/ssl/certs/ca-certificates.crt";
  const bundle: Record<string, string> = {};
  if (existsSync(hostBundle)) {
    Deno.copyFileSync(hostBundle, join(ROOTFS, "etc/wod-sandbox-ca-bundle.pem"));
    bundle.wod_backend_ca_bundle = "/etc/wod-sandbox-ca-bundle.pem";
  }
  return {
    ...bundle,
    wod_backend_https_port: s.https_port,
    wod_backend_http_port: s.http_port,
    wod_backend_public_ip: "127.0.0.1",
    wod_backend_tls_cert_src: join(TLS_DIR, "server.pem"),
    wod_backend_tls_key_src: join(TLS_DIR, "server.key"),
  };
}

/**
 * A self-signed CA and a server certificate it signs for the sandbox's hosts (127.0.0.1, localhost),
 * made once per run in SANDBOX_DIR/tls. Controller code trusts ca.pem for hub requests (trustHubCa).
 */
export async function sandboxTls(): Promise<{ ca: string; cert: string; key: string }> {
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
      "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
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

/** Bind the shared pip/npm download cache into the sandbox (a reinstall does not download again). */
async function mountDownloadCache(): Promise<void> {
  await Deno.mkdir(DOWNLOAD_CACHE, { recursive: true, mode: 0o700 });
  await Deno.mkdir(join(ROOTFS, "var/cache/wod"), { recursive: true });
  await exec("mount", ["--bind", DOWNLOAD_CACHE, join(ROOTFS, "var/cache/wod")]);
}
