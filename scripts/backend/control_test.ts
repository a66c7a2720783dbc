// `wod install --control HOST` (ansible/control.yml) against the sandbox host: check mode on a bare
// host changes nothing, the install writes a checkout of this repository's HEAD, a dedicated user, a
// root-only secrets file and the listener and reconciler units, which systemd-analyze accepts; a second
// run has nothing to do. The sandbox has no systemd, so the services are written, not started
// (wod_control_service_manager: none); a real host runs the same tasks with systemd.
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { edit, withFixture } from "../config/testing.ts";
import { loadConfig } from "../config/load.ts";
import { installControl } from "./control.ts";
import { ensureSandbox, sandboxSsh } from "./sandbox.ts";

const isRoot = Deno.uid() === 0;
const SECRET = "wod-control-test-secret-9f8e7d";

async function have(cmd: string): Promise<boolean> {
  return (await exec("sh", ["-c", 'command -v "$1"', "sh", cmd], { allowFailure: true })).code === 0;
}

Deno.test({
  name:
    "wod install --control writes the listener and reconciler services, a dedicated user and a 0600 secrets file; check mode and a second run change nothing",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const info = await ensureSandbox();
    await withFixture(async (root) => {
      await edit(
        root,
        "environments/test.yaml",
        "  senders: [wodadmin@localhost]\n",
        "  senders: [wodadmin@localhost]\n  hmac_secret_env: WOD_TEST_HMAC\n",
      );
      const config = await loadConfig(root);
      const base = {
        config,
        env: "test",
        host: `${info.host}:${info.ssh_port}`,
        user: info.ssh_user,
        keyFile: info.ssh_key,
        knownHostsFile: info.known_hosts,
        logDir: join(root, ".wod/install/test"),
        getenv: (k: string) => (k === "WOD_TEST_HMAC" ? SECRET : undefined),
        // No systemd in the sandbox; Deno is already there (the sandbox's Deno kernel).
        vars: {
          wod_control_service_manager: "none",
          // The sandbox logs in as "wod" (SANDBOX_SSH_USER): the service user takes another name here.
          wod_control_user: "wodctl",
          wod_control_deno_install: false,
          wod_control_repo_dir: "/opt/wod-control-test",
          wod_control_config_dir: "/etc/wod-control-test",
          wod_control_service_name: "wod-reconcile-test",
          wod_listener_service_name: "wod-listener-test",
          wod_listener_config_dir: "/etc/wod-listener-test",
        },
      };
      await sandboxSsh(info, [
        "rm",
        "-rf",
        "/opt/wod-control-test",
        "/etc/wod-control-test",
        "/etc/wod-listener-test",
      ]);
      const lines: string[] = [];
      const check = await installControl({ ...base, check: true, log: (l) => lines.push(l) });
      assert(check.ok, `check failed: ${check.error}\n${lines.join("\n")}`);
      assert(check.changed > 0, "check mode on a bare host found nothing to do");
      const none = await sandboxSsh(info, ["test", "-e", "/opt/wod-control-test"]);
      assertEquals(none.code, 1, "check mode created the checkout");

      const first = await installControl({ ...base, log: (l) => lines.push(l) });
      assert(first.ok, `install failed: ${first.error}\n${lines.join("\n")}`);
      const ls = await sandboxSsh(info, [
        "stat",
        "-c%n:%a:%U",
        "/opt/wod-control-test/scripts/wod.ts",
        "/etc/wod-control-test/test.env",
        "/etc/systemd/system/wod-reconcile-test.service",
        "/etc/systemd/system/wod-listener-test.service",
      ]);
      assertEquals(ls.code, 0, ls.stderr);
      assertMatch(ls.stdout, /\/etc\/wod-control-test\/test.env:600:root/);
      const user = await sandboxSsh(info, ["getent", "passwd", "wodctl"]);
      assertMatch(user.stdout, /^wodctl:x:\d+:\d+::\/var\/lib\/wod-control:\/usr\/sbin\/nologin/);
      const env = await sandboxSsh(info, ["cat", "/etc/wod-control-test/test.env"]);
      assertMatch(env.stdout, new RegExp(`^WOD_TEST_HMAC=${SECRET}$`, "m"));
      // The secret is in no log line on the controller.
      const logs = await exec("grep", ["-rl", SECRET, join(root, ".wod")], { allowFailure: true });
      assertEquals(logs.stdout, "", "a secret reached the install log");
      assert(!lines.join("\n").includes(SECRET), "a secret reached the output");

      const unit = (await sandboxSsh(info, ["cat", "/etc/systemd/system/wod-reconcile-test.service"])).stdout;
      assertMatch(
        unit,
        /^ExecStart=\/usr\/local\/bin\/deno run -A \/opt\/wod-control-test\/scripts\/wod.ts reconcile --env test --health 127.0.0.1:10027$/m,
      );
      assertMatch(unit, /^User=wodctl$/m);
      assertMatch(unit, /^Restart=always$/m);
      assertMatch(unit, /^EnvironmentFile=-\/etc\/wod-control-test\/test.env$/m);
      if (await have("systemd-analyze")) {
        const dir = await Deno.makeTempDir({ prefix: "wod-units-" });
        try {
          for (const name of ["wod-reconcile-test", "wod-listener-test"]) {
            const text = (await sandboxSsh(info, ["cat", `/etc/systemd/system/${name}.service`])).stdout;
            await Deno.writeTextFile(join(dir, `${name}.service`), text);
          }
          const v = await exec(
            "systemd-analyze",
            [
              "verify",
              "--man=no",
              join(dir, "wod-reconcile-test.service"),
              join(dir, "wod-listener-test.service"),
            ],
            { allowFailure: true },
          );
          // Only complaints about the units' own syntax count (this machine may lack the user or Deno).
          const bad = (v.stdout + v.stderr).split("\n").filter((l) =>
            /wod-(reconcile|listener)-test\.service/.test(l) &&
            !/(not executable|No such file|Failed to resolve|user|group)/i.test(l)
          );
          assertEquals(bad, [], "systemd-analyze found problems in the units");
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      }

      const second = await installControl({ ...base, log: (l) => lines.push(l) });
      assert(second.ok, second.error);
      assertEquals(second.changed, 0, `second run changed something:\n${lines.slice(-30).join("\n")}`);
      await sandboxSsh(info, [
        "rm",
        "-rf",
        "/opt/wod-control-test",
        "/etc/wod-control-test",
        "/etc/wod-listener-test",
      ]);
    });
  },
});
