// The pure parts of bench/classroom.ts: percentiles, the per-student outcome and the report lines.

/** The stages of one student's open, in order (a failure names the stage it stopped at). */
export const STAGES = ["login", "server", "contents", "token", "session", "kernel", "execute"] as const;
export type Stage = typeof STAGES[number];

/** One student's outcome: seconds from the login request to the kernel's execute reply, or the failure. */
export interface StudentOutcome {
  user: string;
  ok: boolean;
  /** Seconds from the start of the login to the execute reply (ok), or to the failure. */
  seconds: number;
  /** Seconds spent in each stage that finished. */
  stages: Partial<Record<Stage, number>>;
  /** The stage that failed, with the reason (no secret). */
  failedAt?: Stage;
  error?: string;
}

/** The q-quantile (0..1) by the nearest-rank method; NaN for no values. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

const fmt = (x: number) => Number.isFinite(x) ? x.toFixed(2) : "n/a";

/**
 * The `name: value unit` lines of a crowd of `n` students: all open (from the common start to the last
 * reply; n/a unless every student opened), p50/p95/max of each student's time, the failures, and the
 * median of each stage. `single` is the baseline: one student alone, before the crowd.
 */
export function reportLines(
  n: number,
  crowd: StudentOutcome[],
  allOpenS: number,
  single: StudentOutcome,
): string[] {
  const ok = crowd.filter((o) => o.ok).map((o) => o.seconds);
  const failed = crowd.filter((o) => !o.ok);
  const p = `classroom${n}`;
  const lines = [
    `${p}_all_open_s: ${failed.length === 0 ? fmt(allOpenS) : "n/a"} s`,
    `${p}_open_p50_s: ${fmt(quantile(ok, 0.5))} s`,
    `${p}_open_p95_s: ${fmt(quantile(ok, 0.95))} s`,
    `${p}_open_max_s: ${fmt(ok.length ? Math.max(...ok) : NaN)} s`,
    `${p}_failed_logins: ${failed.filter((o) => o.failedAt === "login").length} students`,
    `${p}_failed_opens: ${failed.filter((o) => o.failedAt !== "login").length} students`,
  ];
  for (const s of STAGES) {
    const xs = crowd.flatMap((o) => o.stages[s] === undefined ? [] : [o.stages[s]!]);
    lines.push(`${p}_${s}_p50_s: ${fmt(quantile(xs, 0.5))} s`);
  }
  lines.push(`single_login_open_s: ${single.ok ? fmt(single.seconds) : "n/a"} s`);
  if (single.ok && ok.length) {
    lines.push(`${p}_p50_over_single: ${(quantile(ok, 0.5) / single.seconds).toFixed(2)} x`);
  }
  return lines;
}

/** A failure summary: one line per stage and reason, with the count and up to three users. */
export function failureSummary(outcomes: StudentOutcome[]): string[] {
  const groups = new Map<string, string[]>();
  for (const o of outcomes) {
    if (o.ok) continue;
    const key = `${o.failedAt ?? "?"}: ${o.error ?? "unknown error"}`;
    groups.set(key, [...(groups.get(key) ?? []), o.user]);
  }
  return [...groups].sort((a, b) => b[1].length - a[1].length).map(([key, users]) =>
    `${users.length} failed at ${key} (${users.slice(0, 3).join(", ")}${users.length > 3 ? ", ..." : ""})`
  );
}
