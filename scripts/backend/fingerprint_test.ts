// The install fingerprint: what makes a backend stale (code of install.yml and its roles, the values
// passed) and what does not (other roles, key order, compiled Python files).
import { join } from "node:path";
import { assert, assertEquals, assertNotEquals } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { ANSIBLE_DIR } from "./ansible.ts";
import { canonicalJson, installFingerprint, playbookRoles } from "./fingerprint.ts";

async function copyAnsible(): Promise<string> {
  const tmp = await Deno.makeTempDir({ prefix: "wod-fp-" });
  await exec("cp", ["-a", ANSIBLE_DIR, join(tmp, "ansible")]);
  return join(tmp, "ansible");
}

const VALUES = { wod_backend_admin_user: "wodadmin", wod_backend_students_first: 1 };

Deno.test("install.yml names the backend role and the install record role", async () => {
  assertEquals(await playbookRoles(ANSIBLE_DIR, "install.yml"), ["wod_backend", "wod_install"]);
});

Deno.test("the fingerprint is the same for the same code and values, whatever the key order", async () => {
  const a = await installFingerprint(ANSIBLE_DIR, VALUES);
  const b = await installFingerprint(ANSIBLE_DIR, {
    wod_backend_students_first: 1,
    wod_backend_admin_user: "wodadmin",
  });
  assertEquals(a, b);
  assertEquals(canonicalJson({ b: [2, { d: 1, c: 0 }], a: 1 }), '{"a":1,"b":[2,{"c":0,"d":1}]}');
  assert(a.files.includes("roles/wod_backend/files/wod-seat"), "the seat script is not hashed");
  assert(a.files.includes("install.yml"));
  assert(!a.files.some((f) => f.startsWith("roles/wod_listener/")), "a control-host role is hashed");
});

Deno.test("a changed role default or seat script changes the code fingerprint, a changed value only the values", async () => {
  const dir = await copyAnsible();
  try {
    const before = await installFingerprint(dir, VALUES);
    const defaults = join(dir, "roles/wod_backend/defaults/main.yml");
    await Deno.writeTextFile(
      defaults,
      (await Deno.readTextFile(defaults)).replace(
        "wod_backend_hub_concurrent_spawn_limit: 20",
        "wod_backend_hub_concurrent_spawn_limit: 19",
      ),
    );
    const role = await installFingerprint(dir, VALUES);
    assertNotEquals(role.code, before.code);
    assertEquals(role.values, before.values);
    assertNotEquals(role.fingerprint, before.fingerprint);

    await Deno.writeTextFile(join(dir, "roles/wod_backend/files/wod-seat"), "\n# changed\n", {
      append: true,
    });
    const seat = await installFingerprint(dir, VALUES);
    assertNotEquals(seat.code, role.code);

    const value = await installFingerprint(dir, { ...VALUES, wod_backend_students_first: 2 });
    assertEquals(value.code, seat.code);
    assertNotEquals(value.values, seat.values);

    // Not part of the install: another role, compiled Python.
    await Deno.writeTextFile(join(dir, "roles/wod_listener/defaults/main.yml"), "\n# x\n", { append: true });
    await Deno.mkdir(join(dir, "roles/wod_backend/files/__pycache__"), { recursive: true });
    await Deno.writeTextFile(join(dir, "roles/wod_backend/files/__pycache__/x.pyc"), "x");
    assertEquals((await installFingerprint(dir, VALUES)).fingerprint, seat.fingerprint);
  } finally {
    await Deno.remove(join(dir, ".."), { recursive: true });
  }
});
