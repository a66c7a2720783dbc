// Drain into GitHub Actions instead of commits (orders.dispatch: true): one workflow_dispatch call per
// order, with the same inputs as `wod order --dispatch` (`dispatchInputs`: the whole order as JSON, the
// email only sealed with age, and the fields that name the run: 8 of GitHub's 25 inputs).
// Orders for the same seat are dispatched one after the other in arrival order; different seats in
// parallel (a few at a time). A journal of dispatched ids (fsynced after each 204) keeps a re-drained
// spool segment from dispatching an order twice.
import { join } from "node:path";
import { WodError } from "../common/errors.ts";
import { formatSeats, type Order } from "../orders/order.ts";
import { githubClient } from "../git/github_store.ts";
import { seal } from "../state/seal.ts";
import type { OrderSink } from "./sink.ts";

export interface DispatchOptions {
  baseUrl: string;
  token: string;
  /** owner/name */
  repo: string;
  workflow: string;
  ref: string;
  /** age recipients for the email (none: the email is not sent). */
  recipients: string[];
  /** Directory of the journal `dispatched.log` (the spool directory). */
  dir: string;
  parallel?: number;
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

const enc = new TextEncoder();

/**
 * The inputs of order.yml for order `o`: the whole order as JSON (`order`, without the email), the
 * email sealed with age (`email_sealed`; none without recipients: inputs are visible in GitHub's UI),
 * and the fields that name the run and its concurrency group (id, action, env, backend, workshop, seat),
 * which `wod order --order-json` in the workflow checks against the order.
 */
export async function dispatchInputs(o: Order, recipients: string[]): Promise<Record<string, string>> {
  const { email, ...whole } = o;
  const inputs: Record<string, string> = {
    id: o.id,
    action: o.action,
    env: o.env,
    backend: o.backend,
    workshop: o.workshop,
    seat: formatSeats(o.seats),
    order: JSON.stringify(whole),
  };
  if (email && recipients.length) inputs.email_sealed = await seal(email, recipients);
  if (Object.keys(inputs).length > 25) {
    throw new WodError(`Too many workflow inputs for order ${o.id}: GitHub accepts at most 25`);
  }
  return inputs;
}

export class DispatchSink implements OrderSink {
  #done?: Set<string>;
  readonly gh: ReturnType<typeof githubClient>;
  constructor(readonly opts: DispatchOptions) {
    if (!/^[^/\s]+\/[^/\s]+$/.test(opts.repo)) {
      throw new WodError(
        `Invalid GitHub repository "${opts.repo}": expected owner/name (set state.github_repo of the environment, or GITHUB_REPOSITORY, to owner/name)`,
      );
    }
    this.gh = githubClient({
      baseUrl: opts.baseUrl,
      token: opts.token,
      log: (l) => opts.log?.("github", { line: l }),
    });
  }

  get journal(): string {
    return join(this.opts.dir, "dispatched.log");
  }

  async #load(): Promise<Set<string>> {
    if (this.#done) return this.#done;
    let text = "";
    try {
      text = await Deno.readTextFile(this.journal);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    this.#done = new Set(text.split("\n").filter((l) => l));
    return this.#done;
  }

  async #mark(id: string): Promise<void> {
    const f = await Deno.open(this.journal, { append: true, create: true, mode: 0o600 });
    try {
      await f.write(enc.encode(id + "\n"));
      await f.syncData();
    } finally {
      f.close();
    }
    this.#done!.add(id);
  }

  async recordOrders(orders: Order[]): Promise<{ recorded: string[]; duplicates: string[] }> {
    const done = await this.#load();
    const [owner, repo] = this.opts.repo.split("/");
    const recorded: string[] = [];
    const duplicates: string[] = [];
    // Queues per seat (a RESET range queues on its first seat).
    const queues = new Map<string, Order[]>();
    const seen = new Set<string>();
    for (const o of orders) {
      if (done.has(o.id) || seen.has(o.id)) {
        duplicates.push(o.id);
        continue;
      }
      seen.add(o.id);
      const key = `${o.env}/${o.backend}/${o.seats[0]}`;
      queues.set(key, [...(queues.get(key) ?? []), o]);
    }
    const lanes = [...queues.values()];
    let failure: Error | undefined;
    const worker = async () => {
      while (lanes.length && !failure) {
        const lane = lanes.shift()!;
        for (const o of lane) {
          try {
            await this.gh.rest.actions.createWorkflowDispatch({
              owner,
              repo,
              workflow_id: this.opts.workflow,
              ref: this.opts.ref,
              inputs: await dispatchInputs(o, this.opts.recipients),
            });
          } catch (e) {
            failure ??= new Error(
              `Cannot dispatch order ${o.id} to workflow ${this.opts.workflow} of ${this.opts.repo}: ${
                (e as Error).message
              }`,
              { cause: e },
            );
            return;
          }
          await this.#mark(o.id);
          recorded.push(o.id);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.opts.parallel ?? 4) }, worker));
    if (failure) throw failure;
    return { recorded, duplicates };
  }
}
