import { assertEquals } from "../scripts/common/assert.ts";
import { failureSummary, quantile, reportLines, type StudentOutcome } from "./_classroom.ts";

const ok = (user: string, seconds: number): StudentOutcome => ({
  user,
  ok: true,
  seconds,
  stages: { login: seconds / 4, execute: 0.1 },
});
const failed = (user: string, failedAt: StudentOutcome["failedAt"], error: string): StudentOutcome => ({
  user,
  ok: false,
  seconds: 1,
  stages: {},
  failedAt,
  error,
});

Deno.test("quantile takes the nearest rank of the sorted values", () => {
  const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assertEquals(quantile(xs, 0.5), 5);
  assertEquals(quantile(xs, 0.95), 10);
  assertEquals(quantile(xs, 0), 1);
  assertEquals(quantile([3], 0.95), 3);
  assertEquals(Number.isNaN(quantile([], 0.5)), true);
});

Deno.test("the report prints the classroom figures and the single-student baseline", () => {
  const crowd = [ok("student2", 2), ok("student3", 4), ok("student4", 6), ok("student5", 8)];
  const lines = reportLines(4, crowd, 8.5, ok("student1", 1));
  assertEquals(lines.slice(0, 6), [
    "classroom4_all_open_s: 8.50 s",
    "classroom4_open_p50_s: 4.00 s",
    "classroom4_open_p95_s: 8.00 s",
    "classroom4_open_max_s: 8.00 s",
    "classroom4_failed_logins: 0 students",
    "classroom4_failed_opens: 0 students",
  ]);
  assertEquals(lines.includes("classroom4_login_p50_s: 1.00 s"), true);
  assertEquals(lines.includes("classroom4_server_p50_s: n/a s"), true);
  assertEquals(lines.includes("single_login_open_s: 1.00 s"), true);
  assertEquals(lines.at(-1), "classroom4_p50_over_single: 4.00 x");
});

Deno.test("a crowd with failures has no all-open time and counts failed logins apart from failed opens", () => {
  const crowd = [
    ok("student2", 2),
    failed("student3", "login", "refused"),
    failed("student4", "kernel", "x"),
  ];
  const lines = reportLines(3, crowd, 9, failed("student1", "server", "slow"));
  assertEquals(lines[0], "classroom3_all_open_s: n/a s");
  assertEquals(lines.includes("classroom3_failed_logins: 1 students"), true);
  assertEquals(lines.includes("classroom3_failed_opens: 1 students"), true);
  assertEquals(lines.includes("single_login_open_s: n/a s"), true);
});

Deno.test("the failure summary groups students by stage and reason, largest group first", () => {
  const summary = failureSummary([
    ok("student1", 1),
    failed("student2", "server", "timeout"),
    failed("student3", "login", "refused"),
    failed("student4", "login", "refused"),
    failed("student5", "login", "refused"),
    failed("student6", "login", "refused"),
  ]);
  assertEquals(summary, [
    "4 failed at login: refused (student3, student4, student5, ...)",
    "1 failed at server: timeout (student2)",
  ]);
});
