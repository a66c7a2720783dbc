// What a backend is, read from the backend itself (for `wod drift`): over SSH with ssh2 and the host key
// pinned by the connection's known_hosts, its own description (/etc/wod/backend.json), its student
// accounts and the content of active seats; over the JupyterHub API, which servers run.
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { Client } from "ssh2";
import { WodError } from "../common/errors.ts";
import type { BackendConnection } from "./seats.ts";
import { hubFetch } from "./hub.ts";

export interface BackendFacts {
  info: { student_prefix: string; students: [number, number]; home_root: string };
  users: { seat: number; name: string; uid: number; home: string }[];
  /** seat -> the workshop folder exists and is not empty */
  content: Record<string, boolean>;
}

const PROBE = `
import json, os, pwd
DATA = json.loads(__DATA__)
info = json.load(open(DATA["info_file"]))
prefix = info["student_prefix"]
users = []
for p in pwd.getpwall():
    rest = p.pw_name[len(prefix):]
    if p.pw_name.startswith(prefix) and rest.isdigit():
        users.append({"seat": int(rest), "name": p.pw_name, "uid": p.pw_uid, "home": p.pw_dir})
content = {}
for c in DATA["content"]:
    path = os.path.join(info["home_root"], prefix + str(c["seat"]), c["workshop"])
    content[str(c["seat"])] = os.path.isdir(path) and len(os.listdir(path)) > 0
print(json.dumps({"info": info, "users": users, "content": content}))
`;

/** Does a known_hosts file pin `key` for host:port? (plain and hashed entries, no wildcards) */
export function hostKeyPinned(knownHosts: string, host: string, port: number, key: Buffer): boolean {
  const names = port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
  const b64 = key.toString("base64");
  for (const raw of knownHosts.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const parts = line.split(/\s+/);
    if (parts[0].startsWith("@")) continue; // @revoked / @cert-authority: not a pin
    if (parts.length < 3 || parts[2] !== b64) continue;
    const hostField = parts[0];
    if (hostField.startsWith("|1|")) {
      const [, , salt, hash] = hostField.split("|");
      for (const n of names) {
        const h = createHmac("sha1", Buffer.from(salt, "base64")).update(n).digest("base64");
        if (h === hash) return true;
      }
    } else if (hostField.split(",").some((h) => names.includes(h))) return true;
  }
  return false;
}

interface ExecStream {
  on(ev: "data", fn: (d: Buffer) => void): void;
  on(ev: "close", fn: (code: number | null) => void): void;
  stderr: { on(ev: "data", fn: (d: Buffer) => void): void };
  end(data: string): void;
}

/** Run a fixed command on the backend over SSH with the pinned host key; returns stdout. */
export async function sshRun(conn: BackendConnection, command: string, stdin: string): Promise<string> {
  const keyFile = conn.keyFile ?? Deno.env.get("WOD_SSH_KEY_FILE");
  const khFile = conn.knownHostsFile ?? Deno.env.get("WOD_KNOWN_HOSTS_FILE");
  if (!keyFile) throw new WodError(`No SSH key for ${conn.host}:${conn.port}: set WOD_SSH_KEY_FILE`);
  if (!khFile) {
    throw new WodError(
      `No known_hosts for ${conn.host}:${conn.port}: refusing an unpinned host key; set WOD_KNOWN_HOSTS_FILE`,
    );
  }
  const privateKey = await Deno.readTextFile(keyFile);
  const knownHosts = await Deno.readTextFile(khFile);
  return await new Promise<string>((resolve, reject) => {
    const client = new Client();
    let out = "";
    let err = "";
    let hostKeyRejected = false;
    client.on("ready", () => {
      client.exec(command, (e: Error | undefined, stream: ExecStream) => {
        if (e) {
          client.end();
          return reject(
            new WodError(`SSH command on ${conn.host}:${conn.port} failed to start`, { cause: e }),
          );
        }
        stream.on("data", (d: Buffer) => (out += d.toString()));
        stream.stderr.on("data", (d: Buffer) => (err += d.toString()));
        stream.on("close", (code: number | null) => {
          client.end();
          if (code === 0) resolve(out);
          else {
            reject(
              new WodError(
                `Probe on ${conn.host}:${conn.port} exited with ${code}: ${
                  err.trim().split("\n").slice(-3).join(" | ")
                }`,
              ),
            );
          }
        });
        stream.end(stdin);
      });
    });
    client.on("error", (e: Error) => {
      reject(
        new WodError(
          hostKeyRejected
            ? `Host key of ${conn.host}:${conn.port} is not the one pinned in ${khFile}`
            : `Cannot connect over SSH to ${conn.user}@${conn.host}:${conn.port}`,
          { cause: e },
        ),
      );
    });
    client.connect({
      host: conn.host,
      port: conn.port,
      username: conn.user,
      privateKey,
      readyTimeout: 15_000,
      hostVerifier: (key: Buffer) => {
        const ok = hostKeyPinned(knownHosts, conn.host, conn.port, key);
        if (!ok) hostKeyRejected = true;
        return ok;
      },
    });
  });
}

export async function probeBackend(
  conn: BackendConnection,
  content: { seat: number; workshop: string }[],
): Promise<BackendFacts> {
  const data = JSON.stringify(JSON.stringify({ info_file: "/etc/wod/backend.json", content }));
  // The probe reads every home: as root (a named SSH user becomes root with sudo, as Ansible does).
  const cmd = conn.user === "root" ? "python3 -" : "sudo -n python3 -";
  const out = await sshRun(conn, cmd, PROBE.replace("__DATA__", data));
  try {
    return JSON.parse(out) as BackendFacts;
  } catch (err) {
    throw new WodError(`Probe on ${conn.host}:${conn.port} did not print JSON: ${out.slice(0, 200)}`, {
      cause: err,
    });
  }
}

/** Hub users with a running (or starting) server. */
export async function runningServers(conn: BackendConnection): Promise<Set<string>> {
  const tokenFile = conn.hubTokenFile ?? Deno.env.get("WOD_HUB_TOKEN_FILE");
  if (!tokenFile) throw new WodError(`No hub token for ${conn.hubUrl}: set WOD_HUB_TOKEN_FILE`);
  const token = (await Deno.readTextFile(tokenFile)).trim();
  const base = conn.hubUrl.replace(/\/+$/, "").replace(/\/hub$/, "");
  const url = `${base}/hub/api/users`;
  let res: Response;
  try {
    res = await hubFetch(url, { headers: { Authorization: `token ${token}` } });
  } catch (err) {
    throw new WodError(`Cannot reach the JupyterHub API at ${url}`, { cause: err });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new WodError(`JupyterHub API ${url} answered ${res.status} (expected 200 with the service token)`);
  }
  const users = await res.json() as {
    name: string;
    server?: string | null;
    pending?: string | null;
    servers?: object;
  }[];
  const running = new Set<string>();
  for (const u of users) {
    if (u.server || u.pending === "spawn" || (u.servers && Object.keys(u.servers).length > 0)) {
      running.add(u.name);
    }
  }
  return running;
}
