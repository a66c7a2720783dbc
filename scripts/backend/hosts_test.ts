// The sandbox's hosts like real ones: each in its own network namespace, sshd on port 22 at its own
// address only, the named sudo user in and root refused, no route out; and the registry proxy that is
// their only way to the package registries (allowlist, absolute-form HTTP, CONNECT), tested on loopback.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { freePort } from "../common/net.ts";
import { ensureSandboxHosts, sandboxSsh, sshOptions } from "./sandbox.ts";
import { allowed, parseHead, startProxy } from "./registry_proxy.ts";

const isRoot = Deno.uid() === 0;

/** Listening TCP sockets of a host (from its /proc/net/tcp): "address:port" in dotted form. */
function listening(procNetTcp: string): string[] {
  const out: string[] = [];
  for (const line of procNetTcp.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== "0A") continue;
    const [hex, port] = f[1].split(":");
    const ip = [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join(".");
    out.push(`${ip}:${parseInt(port, 16)}`);
  }
  return out;
}

Deno.test({
  name:
    "each sandbox host answers SSH on port 22 at its own address only, lets the sudo user in and refuses root",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const hosts = await ensureSandboxHosts();
    assert(hosts.length >= 2, `${hosts.length} host(s)`);
    assertEquals(new Set(hosts.map((h) => h.host)).size, hosts.length, "two hosts share an address");
    for (const h of hosts) {
      // The host's own name and root through sudo, over port 22 at its address.
      const who = await sandboxSsh(h, ["sh", "-c", "'hostname; id -u'"]);
      assertEquals(who.stdout.trim().split("\n"), [h.name, "0"], who.stderr);
      // sshd listens at the host's address only (and nothing listens on the controller's side).
      const tcp = await sandboxSsh(h, ["cat", "/proc/net/tcp"]);
      const ssh = listening(tcp.stdout).filter((a) => a.endsWith(":22"));
      assertEquals(ssh, [`${h.host}:22`]);
      // Root cannot log in, even with the key the sudo user has.
      const root = await exec(
        "ssh",
        [...sshOptions(h.ssh_key, h.known_hosts, 22), `root@${h.host}`, "true"],
        {
          allowFailure: true,
        },
      );
      assertEquals(root.code, 255, "root logged in");
      assertStringIncludes(root.stderr, "Permission denied");
      // No default route: the only way out is the proxy on the link.
      const routes = await sandboxSsh(h, ["cat", "/proc/net/route"]);
      const dests = routes.stdout.split("\n").slice(1).filter(Boolean).map((l) => l.split(/\s+/)[1]);
      assert(!dests.includes("00000000"), `a default route on ${h.name}:\n${routes.stdout}`);
      // Through the proxy: a registry host is allowed, anything else gets 403 from the proxy.
      const probe = await sandboxSsh(
        h,
        ["sh"],
        [
          "python3 - <<'PY'",
          "import socket, os",
          "proxy = os.environ.get('http_proxy') or open('/etc/environment').read().split('http_proxy=')[1].split()[0]",
          "host, port = proxy.split('//')[1].rstrip('/').split(':')",
          "s = socket.create_connection((host, int(port)), timeout=10)",
          "s.sendall(b'CONNECT example.com:443 HTTP/1.1\\r\\nHost: example.com:443\\r\\n\\r\\n')",
          "print(s.recv(100).split()[1].decode())",
          "PY",
          "",
        ].join("\n"),
      );
      assertEquals(probe.stdout.trim(), "403", probe.stderr);
    }
    // One host is not the other: the first host's key is not the second's.
    const kh = await Deno.readTextFile(hosts[0].known_hosts);
    const keys = hosts.map((h) => kh.split("\n").find((l) => l.startsWith(`${h.host} `))?.split(" ")[2]);
    assert(keys.every((k) => k), `known_hosts lacks a host: ${kh}`);
    assertEquals(new Set(keys).size, hosts.length, "two hosts have the same host key");
  },
});

Deno.test("the registry proxy's allowlist: exact host names, HTTP on 80 and CONNECT on 443 unless a port is named", () => {
  const allow = ["deb.debian.org", "pypi.org", "127.0.0.1:8080"];
  assert(allowed(allow, "deb.debian.org", 80, false));
  assert(allowed(allow, "DEB.debian.org.", 80, false));
  assert(allowed(allow, "pypi.org", 443, true));
  assert(!allowed(allow, "pypi.org", 22, true));
  assert(!allowed(allow, "evil.deb.debian.org", 80, false));
  assert(!allowed(allow, "deb.debian.org.evil.com", 80, false));
  assert(allowed(allow, "127.0.0.1", 8080, false));
  assert(!allowed(allow, "127.0.0.1", 80, false));
  assertEquals(parseHead("GET /x HTTP/1.1\r\nHost: a"), {
    kind: "bad",
    reason: "a proxy request needs an absolute URL",
  });
  assertMatch(JSON.stringify(parseHead("CONNECT pypi.org HTTP/1.1")), /CONNECT needs host:port/);
  assertMatch(JSON.stringify(parseHead("GET https://pypi.org/ HTTP/1.1")), /scheme https: is not proxied/);
});

Deno.test({
  name:
    "the registry proxy forwards an allowed absolute-form request, tunnels CONNECT, and refuses other hosts",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const originPort = freePort();
    const origin = Deno.serve(
      { hostname: "127.0.0.1", port: originPort, onListen() {} },
      (req) => new Response(`origin saw ${new URL(req.url).pathname} ${req.headers.get("connection")}`),
    );
    const proxyPort = freePort();
    const denied: string[] = [];
    const [ln] = startProxy({
      listen: [{ hostname: "127.0.0.1", port: proxyPort }],
      allow: [`127.0.0.1:${originPort}`],
      log: (l) => denied.push(l),
    });
    const raw = async (text: string, then?: string) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: proxyPort });
      await c.write(new TextEncoder().encode(text));
      let out = "";
      const buf = new Uint8Array(4096);
      let sent = false;
      for (;;) {
        const n = await c.read(buf);
        if (n === null) break;
        out += new TextDecoder().decode(buf.subarray(0, n));
        if (then && !sent && out.includes("\r\n\r\n")) {
          sent = true;
          await c.write(new TextEncoder().encode(then));
        }
      }
      c.close();
      return out;
    };
    try {
      const ok = await raw(`GET http://127.0.0.1:${originPort}/pool/a.deb HTTP/1.1\r\nHost: x\r\n\r\n`);
      assertMatch(ok, /^HTTP\/1\.1 200/);
      assertStringIncludes(ok, "origin saw /pool/a.deb close");
      const tunnel = await raw(
        `CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\n\r\n`,
        `GET /inner HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      assertMatch(tunnel, /^HTTP\/1\.1 200 Connection Established/);
      assertStringIncludes(tunnel, "origin saw /inner");
      const no = await raw(`GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n`);
      assertMatch(no, /^HTTP\/1\.1 403/);
      const noTunnel = await raw(`CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n`);
      assertMatch(noTunnel, /^HTTP\/1\.1 403/);
      assert(denied.some((l) => l.includes("example.com:80 is not a registry")), denied.join("\n"));
    } finally {
      ln.close();
      await origin.shutdown();
    }
  },
});
