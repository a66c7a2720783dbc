// The install playbook against the real shared sandbox: idempotence (a re-run reports changed=0),
// what it installs (accounts, kernels, hub with a least-privilege service token) and a fail2ban jail
// that really bans an address after repeated failed logins.
import net from "node:net";
import tls from "node:tls";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { ensureSandbox, installSandbox, sandboxNftTable, sandboxSsh } from "./sandbox.ts";
import { HubClient } from "./hub.ts";
import { runPlaybook } from "./ansible.ts";
import { exec } from "../common/exec.ts";

const isRoot = Deno.uid() === 0;
// The sandbox host's link gives this machine two more addresses besides its own (which is in the
// jail's ignore list, everything else uses it): the attacker, and the address the attacker claims in
// X-Real-Ip / X-Forwarded-For (a would-be victim).
let ATTACKER = "";
let SPOOFED = "";
let HOST = "";

/**
 * One raw HTTP request from `local` (bound source address), over TLS trusting `ca` when given;
 * resolves to the status, or 0 when refused.
 */
function requestFrom(local: string, port: number, request: string, ca?: string): Promise<number> {
  return new Promise((resolve) => {
    let data = "";
    const raw = net.connect({ host: HOST, port, localAddress: local });
    const s = ca ? tls.connect({ socket: raw, ca, servername: "localhost" }) : raw;
    if (ca) raw.on("error", () => resolve(0));
    s.setTimeout(15_000, () => {
      s.destroy();
      resolve(0);
    });
    s.on(ca ? "secureConnect" : "connect", () => s.write(request));
    s.on("data", (d) => {
      data += String(d);
      const m = data.match(/^HTTP\/1\.[01] (\d{3})/);
      if (m) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on("error", () => resolve(0));
    s.on("close", () => resolve(0));
  });
}

function loginRequest(port: number): string {
  const body = "username=student39&password=not-the-password";
  return `POST /hub/login HTTP/1.1\r\nHost: ${HOST}:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
    `X-Real-Ip: ${SPOOFED}\r\nX-Forwarded-For: ${SPOOFED}\r\nX-Wod-Edge: a-guess\r\n` +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
}

Deno.test({
  name:
    "install playbook: a re-run reports changed=0, accounts, kernels and a scoped service token are in place",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox();
    const again = await installSandbox();
    assertEquals(again.changed, 0, "the second install run changed something");

    const ids = await sandboxSsh(info, ["id", "student7"]);
    assertMatch(ids.stdout, /uid=2007\(student7\) gid=2007\(student7\)/);
    const admin = await sandboxSsh(info, ["id", "wodadmin"]);
    assertEquals(admin.code, 0, "no admin account");
    const home = await sandboxSsh(info, ["stat", "-c%a:%U", "/student/student120"]);
    assertEquals(home.stdout.trim(), "700:student120");
    const kernels = await sandboxSsh(info, [
      "ls",
      "/usr/share/jupyter/kernels",
      "/usr/local/share/jupyter/kernels",
      "/opt/jupyterhub/share/jupyter/kernels",
    ]);
    assertMatch(kernels.stdout, /python3/);
    assertMatch(kernels.stdout, /bash/);
    assertMatch(kernels.stdout, /deno/);

    const hub = await HubClient.fromTokenFile(info.hub_url, info.hub_token_file);
    assertMatch((await hub.info()).version, /^\d+\./);
    assertEquals((await Deno.stat(info.hub_token_file)).mode! & 0o077, 0, "token file readable by others");
    // Least privilege: the token manages users and servers but cannot e.g. shut the hub down.
    const shutdown = await hub.request("POST", "/shutdown");
    assertEquals(shutdown.status, 403);
    const me = await hub.request<{ kind: string; scopes: string[] }>("GET", "/user");
    assertEquals(me.body.kind, "service");
    assert(
      !me.body.scopes.includes("admin-ui") && !me.body.scopes.includes("shutdown"),
      me.body.scopes.join(","),
    );
    // Only what wod calls: no token minting, no access to the students' servers.
    for (const scope of ["tokens", "access:servers", "admin:server_state"]) {
      assert(
        !me.body.scopes.some((x) => x === scope || x.startsWith(`${scope}!`)),
        `${scope} in ${me.body.scopes}`,
      );
    }
    const tokens = await hub.request("POST", "/users/student7/tokens", {});
    assertEquals(tokens.status, 403, "the service token can mint tokens for a student");
  },
});

Deno.test({
  name:
    "fail2ban bans the real client address after repeated failed hub logins, whatever X-Real-Ip the client sends",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox();
    [ATTACKER, SPOOFED] = info.client_addresses;
    HOST = info.host;
    const hubUrl = new URL(info.hub_url);
    const port = Number(hubUrl.port || (hubUrl.protocol === "https:" ? 443 : 80));
    const ca = await Deno.readTextFile(info.ca_file);
    const jail = "wod-jupyterhub";
    await sandboxSsh(info, ["fail2ban-client", "set", jail, "unbanip", ATTACKER]);
    await sandboxSsh(info, ["fail2ban-client", "set", jail, "unbanip", SPOOFED]);
    try {
      const max = Number(
        (await sandboxSsh(info, ["fail2ban-client", "get", jail, "maxretry"])).stdout.trim(),
      );
      assert(max >= 2 && max <= 20, `maxretry ${max}`);
      assertEquals(
        await requestFrom(ATTACKER, port, "GET /hub/login HTTP/1.0\r\n\r\n", ca),
        200,
        "not reachable before",
      );
      // Straight to the hub's own port (any local process, a student's server included, can reach
      // it): the spoofed header is not honoured there either.
      const conf = await sandboxSsh(
        info,
        ["sh"],
        "grep -h 'hub_port =' /etc/jupyterhub/jupyterhub_config.py\n",
      );
      const hubPort = Number(conf.stdout.match(/hub_port = (\d+)/)?.[1]);
      assert(hubPort > 0, `no hub_port in the hub configuration: ${conf.stdout}`);
      // That port listens on the host's loopback only: ask from there.
      const inside = await sandboxSsh(
        info,
        ["sh"],
        [
          "python3 - <<'PY'",
          "import socket",
          `s = socket.create_connection(("127.0.0.1", ${hubPort}))`,
          `s.sendall(${JSON.stringify(loginRequest(hubPort))}.encode())`,
          "print(s.recv(100).split()[1].decode())",
          "PY",
          "",
        ].join("\n"),
      );
      assertEquals(inside.stdout.trim(), "403", inside.stderr);
      for (let i = 0; i < max; i++) {
        // A failed login through the public entry (nginx): JupyterHub 5 answers 403.
        const status = await requestFrom(ATTACKER, port, loginRequest(port), ca);
        if (status === 0) break; // already banned (earlier failures still counted)
        assertEquals(status, 403);
      }
      let banned = "";
      for (let i = 0; i < 40 && !banned.includes(ATTACKER); i++) {
        await new Promise((r) => setTimeout(r, 500));
        banned = (await sandboxSsh(info, ["fail2ban-client", "get", jail, "banip"])).stdout;
      }
      assert(banned.includes(ATTACKER), `fail2ban did not ban ${ATTACKER}: ${banned}`);
      assert(!banned.includes(SPOOFED), `fail2ban banned the spoofed ${SPOOFED}: ${banned}`);
      // The hub's access log names the TCP peer, not the address the client claimed.
      const logged =
        (await sandboxSsh(info, ["grep", "POST /hub/login", "/var/log/jupyterhub/jupyterhub.log"]))
          .stdout;
      assertMatch(logged, new RegExp(`\\(@${ATTACKER.replaceAll(".", "\\.")}\\)`));
      assert(!logged.includes(`@${SPOOFED}`), `a login was logged under the spoofed address:\n${logged}`);
      const table = await sandboxSsh(info, ["nft", "list", "table", "inet", sandboxNftTable()]);
      assertMatch(table.stdout, new RegExp(ATTACKER.replaceAll(".", "\\.")));
      // Really banned: the hub port no longer answers that address, and still answers this machine's.
      assertEquals(
        await requestFrom(ATTACKER, port, "GET /hub/login HTTP/1.0\r\n\r\n", ca),
        0,
        "banned address served",
      );
      assertEquals(
        await requestFrom(info.controller_address, port, "GET /hub/login HTTP/1.0\r\n\r\n", ca),
        200,
      );
      assertEquals(
        await requestFrom(SPOOFED, port, "GET /hub/login HTTP/1.0\r\n\r\n", ca),
        200,
        "victim banned",
      );
    } finally {
      await sandboxSsh(info, ["fail2ban-client", "set", jail, "unbanip", ATTACKER]);
      await sandboxSsh(info, ["fail2ban-client", "set", jail, "unbanip", SPOOFED]);
    }
  },
});

Deno.test({
  name: "the Ansible runner checks host keys: a host whose key differs from the pinned one is not contacted",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox();
    const dir = await Deno.makeTempDir({ prefix: "wod-hostkey-test-" });
    try {
      const other = join(dir, "other_key");
      await exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
      const pub = (await Deno.readTextFile(`${other}.pub`)).trim().split(" ");
      const kh = join(dir, "known_hosts");
      await Deno.writeTextFile(kh, `${info.host} ${pub[0]} ${pub[1]}\n`);
      const run = await runPlaybook({
        playbook: "seats.yml",
        hosts: [{
          name: "jup1",
          host: info.host,
          port: info.ssh_port,
          user: info.ssh_user,
          keyFile: info.ssh_key,
          knownHostsFile: kh,
        }],
        env: { ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, "cp") },
      });
      assertEquals(run.ok, false);
      assertEquals(run.stats.jup1.unreachable, 1);
      assertMatch(run.tasks[0].msg ?? "", /Host key verification failed/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the Ansible runner stops a playbook that overruns its timeout and says so",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox();
    const dir = await Deno.makeTempDir({ prefix: "wod-timeout-test-" });
    try {
      const t0 = performance.now();
      let message = "";
      await runPlaybook({
        playbook: "install.yml",
        hosts: [{
          name: "jup1",
          host: info.host,
          port: info.ssh_port,
          user: info.ssh_user,
          keyFile: info.ssh_key,
          knownHostsFile: info.known_hosts,
        }],
        // Fact gathering alone takes longer than this.
        timeoutSeconds: 0.5,
        env: { ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, "cp") },
      }).catch((e) => message = (e as Error).message);
      assertMatch(message, /ansible-playbook install\.yml did not finish within 0\.5 s and was stopped/);
      assert((performance.now() - t0) / 1000 < 15, "the runner waited for the playbook");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
