import { assert, assertEquals, assertRejects, assertStringIncludes } from "./assert.ts";
import { childEnv, exec } from "./exec.ts";

Deno.test("exec: a child sees only the base environment and what the caller passes, not our secrets", async () => {
  Deno.env.set("WOD_EXEC_TEST_CANARY", "canary-7f3a");
  try {
    const r = await exec("env", [], { env: { GIVEN: "yes" }, inherit: ["WOD_EXEC_TEST_MISSING"] });
    assert(!r.stdout.includes("canary-7f3a"), "the canary leaked into the child's environment");
    assertStringIncludes(r.stdout, "GIVEN=yes\n");
    assertStringIncludes(r.stdout, "PATH=");
    const inherited = await exec("env", [], { inherit: ["WOD_EXEC_TEST_*"] });
    assertStringIncludes(inherited.stdout, "WOD_EXEC_TEST_CANARY=canary-7f3a");
    const bare = await exec("env", [], { bare: true });
    assertEquals(bare.stdout, "");
  } finally {
    Deno.env.delete("WOD_EXEC_TEST_CANARY");
  }
  assertEquals(childEnv({ bare: true, env: { A: "1" } }), { A: "1" });
});

Deno.test("exec: a timeout kills the child and says so", async () => {
  const started = Date.now();
  const r = await exec("sleep", ["30"], { timeoutMs: 200, allowFailure: true });
  assert(r.timedOut && r.code !== 0, `code ${r.code}, timedOut ${r.timedOut}`);
  assert(Date.now() - started < 5_000, "the timeout did not stop the child");
  await assertRejects(() => exec("sleep", ["30"], { timeoutMs: 200 }), /did not finish within 200 ms/);
});

Deno.test("exec: output streams line by line, redacted, and errors carry the redacted tail", async () => {
  const lines: string[] = [];
  const r = await exec("sh", ["-c", 'echo "one s3cret"; echo two >&2; printf three'], {
    redact: ["s3cret"],
    onLine: (line, stream) => lines.push(`${stream}:${line}`),
  });
  assertEquals(lines.sort(), ["stderr:two", "stdout:one ***", "stdout:three"]);
  assertEquals(r.stdout, "one s3cret\nthree");
  const err = await assertRejects(
    () => exec("sh", ["-c", "echo 'bad s3cret' >&2; exit 3"], { redact: ["s3cret"] }),
  );
  assertStringIncludes(err.message, "exit code 3");
  assertStringIncludes(err.message, "bad ***");
  assert(!err.message.includes("s3cret"));
});

Deno.test("exec: stdin reaches the child", async () => {
  assertEquals((await exec("cat", [], { stdin: "hello" })).stdout, "hello");
});
