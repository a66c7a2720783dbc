// The reconciler: a long-running controller next to the backends that pulls recorded state and
// applies it as soon as it changes (the Argo CD / Flux pattern), so a participant waits seconds, not a
// workflow schedule. It wakes on a nudge from the listener on the same host (POST /wake) and, as a
// fallback, checks the state remote's tip every few seconds; it runs expiry every minute; it retries
// a failed pass with exponential backoff; it acts only while it holds the environment's lease, which
// `wod apply` (CLI or Actions) respects too; on stop it finishes the running pass and releases the
// lease. The passes themselves are injected (`ReconcilerDeps`), so the same apply code as `wod apply`
// runs here and tests can time every step.

/** The environment's lease: at most one holder acts on an environment at a time. */
export interface Lease {
  /** Take the lease (or renew it if already ours); false while someone else holds a live one. */
  acquire(ttlMs: number): Promise<boolean>;
  /** Give it up (only if ours). */
  release(): Promise<void>;
  /** Who holds it now and until when (for /health), if known. */
  describe?(): Promise<{ holder: string; expires: string } | undefined>;
}

export interface PassResult {
  /** Seat actions run and succeeded / failed in this pass. */
  applied: number;
  failed: number;
  /** Order ids the pass acted on (every log line about an order names it). */
  orders: string[];
  /** Credentials or callbacks that could not be delivered (they stay pending in state). */
  deliveriesFailed?: number;
  /** Front-end callbacks still pending delivery after the pass (retried with backoff). */
  deliveriesPending?: number;
}

export interface ReconcilerDeps {
  /** One apply pass over recorded state (the code of `wod apply`). */
  applyOnce(): Promise<PassResult>;
  /** Reminders and expiry orders at `now` (the code of `wod expire`); returns the orders recorded. */
  expireOnce(now: Date): Promise<{ recorded: string[] }>;
  /** The state remote's current tip (a commit id), to notice new orders without a nudge. */
  stateTip(): Promise<string | undefined>;
  /** Seats by status (for /metrics) and how many have pending actions. */
  seatCounts(): Promise<{ byStatus: Record<string, number>; pending: number; deliveries?: number }>;
  lease: Lease;
  now?: () => Date;
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

export interface ReconcilerOptions {
  /** How often the state remote's tip is checked without a nudge (default 5 s). */
  fetchIntervalMs?: number;
  /** How often expiry runs (default 60 s). */
  expireIntervalMs?: number;
  /** Lease time to live; renewed at a third of it (default 30 s). */
  leaseTtlMs?: number;
  /** Wait this long after a nudge so that orders arriving together are applied in one pass. */
  batchWindowMs?: number;
  /** Backoff after a failed pass: base, doubled each time, capped (defaults 2 s and 5 min). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

/** Upper bounds (seconds) of the apply duration histogram. */
export const DURATION_BUCKETS = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];

export interface ReconcilerHealth {
  status: "ok" | "degraded" | "standby" | "stopping";
  lease: { held: boolean; holder?: string; expires?: string };
  lastReconcile?: string;
  lastResult?: "ok" | "failed" | "error";
  lastError?: string;
  pending: number;
  /** Front-end callbacks recorded as pending delivery. */
  pendingDeliveries: number;
  consecutiveFailures: number;
  nextRetry?: string;
}

export class Reconciler {
  private readonly o: Required<ReconcilerOptions>;
  private readonly now: () => Date;
  private readonly log: (event: string, fields?: Record<string, unknown>) => void;
  private stopping = false;
  private wakeResolve?: () => void;
  private woken = false;
  private loopDone?: Promise<void>;
  private leaseHeld = false;
  private leaseTimer?: ReturnType<typeof setInterval>;
  private lastTip?: string;
  private lastExpire = 0;
  private retryAt = 0;
  private failures = 0;
  private pending = 0;
  private pendingDeliveries = 0;
  private lastReconcile?: Date;
  private lastResult?: "ok" | "failed" | "error";
  private lastError?: string;
  private seatsByStatus: Record<string, number> = {};
  // metrics
  private passes = { ok: 0, failed: 0, error: 0 };
  private applied = 0;
  private applyFailed = 0;
  private deliveriesFailed = 0;
  private expiryRecorded = 0;
  private durations: number[] = [];
  private durationSum = 0;
  /** Set while a pass runs (tests assert that two reconcilers never overlap). */
  running = false;

  constructor(private readonly deps: ReconcilerDeps, opts: ReconcilerOptions = {}) {
    this.o = {
      fetchIntervalMs: opts.fetchIntervalMs ?? 5_000,
      expireIntervalMs: opts.expireIntervalMs ?? 60_000,
      leaseTtlMs: opts.leaseTtlMs ?? 30_000,
      batchWindowMs: opts.batchWindowMs ?? 200,
      backoffBaseMs: opts.backoffBaseMs ?? 2_000,
      backoffMaxMs: opts.backoffMaxMs ?? 300_000,
    };
    this.now = deps.now ?? (() => new Date());
    this.log = deps.log ?? (() => {});
  }

  /** Nudge: new orders were recorded (the listener calls this through POST /wake). */
  wake(reason = "wake"): void {
    this.log("wake", { reason });
    this.woken = true;
    this.wakeResolve?.();
  }

  start(): void {
    if (this.loopDone) return;
    this.loopDone = this.loop().catch((err) => {
      this.log("reconciler-crashed", { error: (err as Error).message });
      throw err;
    });
  }

  /** Stop: no new pass starts; the running one finishes; the lease is released. Bounded by the pass. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeResolve?.();
    await this.loopDone?.catch(() => {});
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    if (this.leaseHeld) {
      await this.deps.lease.release().catch(() => {});
      this.leaseHeld = false;
      this.log("lease-released");
    }
  }

  /** Simulate a crash (tests): stop acting at once, keep the lease as a killed process would. */
  async abandon(): Promise<void> {
    this.stopping = true;
    this.wakeResolve?.();
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    await this.loopDone?.catch(() => {});
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeResolve = undefined;
        resolve();
      }, Math.max(0, ms));
      this.wakeResolve = () => {
        clearTimeout(t);
        this.wakeResolve = undefined;
        resolve();
      };
    });
  }

  private async holdLease(): Promise<boolean> {
    // Held: the background timer renews it (a renewal may be a commit on the state remote, so not
    // on every turn of the loop).
    if (this.leaseHeld) return true;
    let ok = false;
    try {
      ok = await this.deps.lease.acquire(this.o.leaseTtlMs);
    } catch (err) {
      this.log("lease-error", { error: (err as Error).message });
    }
    if (ok && !this.leaseHeld) {
      this.leaseHeld = true;
      this.log("lease-acquired", { ttl_ms: this.o.leaseTtlMs });
      // Renew in the background, also during a long pass.
      this.leaseTimer = setInterval(async () => {
        if (this.stopping) return;
        const still = await this.deps.lease.acquire(this.o.leaseTtlMs).catch(() => false);
        if (!still && this.leaseHeld) {
          this.leaseHeld = false;
          clearInterval(this.leaseTimer);
          this.leaseTimer = undefined;
          this.log("lease-lost");
        }
      }, Math.max(50, Math.floor(this.o.leaseTtlMs / 3)));
    }
    return ok;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const t = this.now().getTime();
      if (!await this.holdLease()) {
        await this.sleep(Math.min(this.o.fetchIntervalMs, Math.max(50, Math.floor(this.o.leaseTtlMs / 3))));
        continue;
      }
      let why: string | undefined;
      if (this.woken) why = "wake";
      if (!why && t - this.lastExpire >= this.o.expireIntervalMs) why = "expire";
      if (!why && this.failures > 0 && t >= this.retryAt) why = "retry";
      if (!why) {
        const tip = await this.deps.stateTip().catch((err) => {
          this.log("fetch-failed", { error: (err as Error).message });
          return undefined;
        });
        if (tip !== undefined && tip !== this.lastTip) {
          why = this.lastTip === undefined ? "start" : "state-changed";
          this.lastTip = tip;
        }
      }
      if (why && !(this.failures > 0 && t < this.retryAt && why !== "wake" && why !== "expire")) {
        if (why === "wake" && this.o.batchWindowMs > 0) await this.sleep(this.o.batchWindowMs);
        this.woken = false;
        await this.pass(why);
        if (this.stopping) break;
        continue;
      }
      const untilRetry = this.failures > 0 ? this.retryAt - t : Infinity;
      const untilExpire = this.lastExpire + this.o.expireIntervalMs - t;
      await this.sleep(Math.min(this.o.fetchIntervalMs, untilRetry, untilExpire));
    }
  }

  private async pass(why: string): Promise<void> {
    const started = performance.now();
    this.running = true;
    this.log("pass-started", { why });
    try {
      // This pass covers everything recorded up to the tip read now.
      const tip = await this.deps.stateTip().catch(() => undefined);
      if (tip !== undefined) this.lastTip = tip;
      const nowDate = this.now();
      if (why === "expire" || nowDate.getTime() - this.lastExpire >= this.o.expireIntervalMs) {
        this.lastExpire = nowDate.getTime();
        const ex = await this.deps.expireOnce(nowDate);
        this.expiryRecorded += ex.recorded.length;
        for (const id of ex.recorded) this.log("expiry-order", { order: id });
      }
      const r = await this.deps.applyOnce();
      this.applied += r.applied;
      this.applyFailed += r.failed;
      this.deliveriesFailed += r.deliveriesFailed ?? 0;
      for (const id of r.orders) this.log("order-applied", { order: id, why });
      const counts = await this.deps.seatCounts().catch(() => undefined);
      if (counts) {
        this.seatsByStatus = counts.byStatus;
        this.pending = counts.pending;
        this.pendingDeliveries = counts.deliveries ?? r.deliveriesPending ?? 0;
      }
      this.lastResult = r.failed > 0 ? "failed" : "ok";
      this.lastError = undefined;
      const undelivered = r.deliveriesPending ?? 0;
      if (r.failed > 0) this.backoff(`${r.failed} seat action(s) failed`);
      else if (undelivered > 0) this.backoff(`${undelivered} front-end callback(s) pending delivery`);
      else this.failures = 0;
      this.passes[this.lastResult]++;
    } catch (err) {
      this.lastResult = "error";
      this.lastError = (err as Error).message;
      this.passes.error++;
      this.backoff(this.lastError);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.durations.push(seconds);
      this.durationSum += seconds;
      this.lastReconcile = this.now();
      this.running = false;
      this.log("pass", { why, result: this.lastResult, seconds: Number(seconds.toFixed(3)) });
    }
  }

  private backoff(reason: string): void {
    this.failures++;
    const delay = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** (this.failures - 1));
    this.retryAt = this.now().getTime() + delay;
    this.log("retry-scheduled", { reason, in_ms: delay, failures: this.failures });
  }

  async health(): Promise<ReconcilerHealth> {
    const who = await this.deps.lease.describe?.().catch(() => undefined);
    const status = this.stopping
      ? "stopping"
      : !this.leaseHeld
      ? "standby"
      : this.lastResult === "error" || this.failures > 2
      ? "degraded"
      : "ok";
    return {
      status,
      lease: { held: this.leaseHeld, ...(who ?? {}) },
      lastReconcile: this.lastReconcile?.toISOString(),
      lastResult: this.lastResult,
      lastError: this.lastError,
      pending: this.pending,
      pendingDeliveries: this.pendingDeliveries,
      consecutiveFailures: this.failures,
      nextRetry: this.failures > 0 ? new Date(this.retryAt).toISOString() : undefined,
    };
  }

  /** The Prometheus text exposition format (version 0.0.4). */
  metrics(): string {
    const l: string[] = [];
    const metric = (name: string, type: string, help: string) =>
      l.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    metric("wod_reconcile_passes_total", "counter", "Reconcile passes by result.");
    for (const [r, n] of Object.entries(this.passes)) {
      l.push(`wod_reconcile_passes_total{result="${r}"} ${n}`);
    }
    metric("wod_reconcile_orders_applied_total", "counter", "Seat actions applied successfully.");
    l.push(`wod_reconcile_orders_applied_total ${this.applied}`);
    metric(
      "wod_reconcile_orders_failed_total",
      "counter",
      "Seat actions that failed (retried with backoff).",
    );
    l.push(`wod_reconcile_orders_failed_total ${this.applyFailed}`);
    metric("wod_reconcile_expiry_orders_total", "counter", "Orders recorded by expiry.");
    l.push(`wod_reconcile_expiry_orders_total ${this.expiryRecorded}`);
    metric(
      "wod_reconcile_deliveries_failed_total",
      "counter",
      "Credential or callback deliveries that failed.",
    );
    l.push(`wod_reconcile_deliveries_failed_total ${this.deliveriesFailed}`);
    metric("wod_reconcile_apply_duration_seconds", "histogram", "Duration of reconcile passes.");
    for (const b of DURATION_BUCKETS) {
      l.push(
        `wod_reconcile_apply_duration_seconds_bucket{le="${b}"} ${
          this.durations.filter((d) => d <= b).length
        }`,
      );
    }
    l.push(`wod_reconcile_apply_duration_seconds_bucket{le="+Inf"} ${this.durations.length}`);
    l.push(`wod_reconcile_apply_duration_seconds_sum ${this.durationSum.toFixed(6)}`);
    l.push(`wod_reconcile_apply_duration_seconds_count ${this.durations.length}`);
    metric("wod_reconcile_seats", "gauge", "Recorded seats by status.");
    for (const [s, n] of Object.entries(this.seatsByStatus).sort()) {
      l.push(`wod_reconcile_seats{status="${s}"} ${n}`);
    }
    metric("wod_reconcile_pending_seats", "gauge", "Seats with pending actions.");
    l.push(`wod_reconcile_pending_seats ${this.pending}`);
    metric("wod_reconcile_pending_deliveries", "gauge", "Front-end callbacks pending delivery (retried).");
    l.push(`wod_reconcile_pending_deliveries ${this.pendingDeliveries}`);
    metric("wod_reconcile_lease_held", "gauge", "1 while this reconciler holds the environment's lease.");
    l.push(`wod_reconcile_lease_held ${this.leaseHeld ? 1 : 0}`);
    metric("wod_reconcile_consecutive_failures", "gauge", "Failed passes in a row.");
    l.push(`wod_reconcile_consecutive_failures ${this.failures}`);
    return l.join("\n") + "\n";
  }
}
