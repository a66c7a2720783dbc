// `wod order <create|cleanup|reset|purge> ...`: record an order in state (one commit), or with
// --dispatch start the order workflow through GitHub's workflow_dispatch API.
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError, WodError } from "../common/errors.ts";
import { loadConfig, requireEnvironment } from "../config/load.ts";
import type { Order } from "../config/types.gen.ts";
import { checkOrder, contentParts, orderId } from "../orders/check.ts";
import { openStore } from "../state/store.ts";
import { githubClient } from "../common/github.ts";
import { dispatchInputs } from "../mail/dispatch.ts";

export const help =
  `Usage: deno task wod order <create|cleanup|reset|purge> --env ENV --workshop ID --seat N [options]

Records an order in the environment's recorded state (one commit; idempotent by order id), or with
--dispatch starts the order workflow (GitHub workflow_dispatch) that records and applies it.

Options:
  --env ENV          environment (environments/ENV.yaml)
  --workshop ID      workshop id, e.g. WKSHP-Shell101
  --seat N | N-M     seat number local to the backend (a range N-M only for reset)
  --backend NAME     backend (default: the one whose range for the workshop holds the seat)
  --customer ID      front-end customer id
  --email ADDR       participant email (sealed with age before it is recorded)
  --email-sealed ARMOR  the email already sealed (age armor; the order workflow's email_sealed input)
  --mode WKSHP|CHLG  workshop variant
  --id ID            order id (default: derived from the content and the time; reuse it to retry safely)
  --reason TEXT      why (kept in the ledger)
  --private DIR      private repo overlay
  --dispatch         call workflow_dispatch instead of committing: GITHUB_API_URL (default
                     https://api.github.com), GITHUB_REPOSITORY (owner/name), GITHUB_TOKEN
  --workflow FILE    workflow to dispatch (default order.yml, or $WOD_ORDER_WORKFLOW)
  --ref REF          git ref for the dispatch (default $GITHUB_REF_NAME or main)
  --json             print the result as JSON`;

const VERBS = { create: "CREATE", cleanup: "CLEANUP", reset: "RESET", purge: "PURGE" } as const;

export function parseSeats(text: string, allowRange: boolean): [number, number] {
  const m = /^(\d{1,6})(?:-(\d{1,6}))?$/.exec(text);
  if (!m) {
    throw new UsageError(`Invalid --seat "${text}": expected a seat number N or (reset only) a range N-M`);
  }
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (a !== b && !allowRange) throw new UsageError(`Invalid --seat "${text}": only reset takes a range`);
  if (a > b) throw new UsageError(`Invalid --seat "${text}": the first seat is after the last`);
  return [a, b];
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs("order", args, {
    env: { type: "string" },
    workshop: { type: "string" },
    seat: { type: "string" },
    backend: { type: "string" },
    customer: { type: "string" },
    email: { type: "string" },
    "email-sealed": { type: "string" },
    mode: { type: "string" },
    id: { type: "string" },
    reason: { type: "string" },
    private: { type: "string" },
    dispatch: { type: "boolean" },
    workflow: { type: "string" },
    ref: { type: "string" },
    json: { type: "boolean" },
  }, true);
  const verb = positionals[0] as keyof typeof VERBS | undefined;
  if (!verb || !(verb in VERBS) || positionals.length !== 1) {
    throw new UsageError(
      `Expected one action for "wod order": create, cleanup, reset or purge (got ${
        positionals.join(" ") || "none"
      })`,
    );
  }
  const action = VERBS[verb];
  const envName = requireOption("order", values.env, "env");
  const workshop = requireOption("order", values.workshop, "workshop");
  const seats = parseSeats(requireOption("order", values.seat, "seat"), action === "RESET");
  if (values.mode !== undefined && values.mode !== "WKSHP" && values.mode !== "CHLG") {
    throw new UsageError(`Invalid --mode "${values.mode}": expected WKSHP or CHLG`);
  }
  const root = repoRoot();
  const cfg = await loadConfig(root, { privateDir: values.private });
  const env = requireEnvironment(cfg, envName);
  let backend = values.backend;
  if (!backend) {
    const holds = env.value.backends.filter((b) => {
      const r = b.ranges?.[workshop];
      return r && seats[0] >= r[0] && seats[1] <= r[1];
    });
    if (holds.length === 0) {
      throw new WodError(
        `No backend of environment "${envName}" has a range for workshop ${workshop} holding seat ${values.seat} (${env.file}); name one with --backend`,
      );
    }
    backend = holds[0].name;
  }
  const received = new Date().toISOString();
  const body: Omit<Order, "id" | "received"> = {
    action,
    env: envName,
    backend,
    workshop,
    seats,
    source: values.dispatch ? "dispatch" : "cli",
  };
  if (values.mode) body.mode = values.mode as "WKSHP" | "CHLG";
  if (values.customer !== undefined) body.customer = values.customer;
  if (values.email !== undefined) body.email = values.email;
  if (values.reason !== undefined) body.reason = values.reason;
  const order: Order = {
    id: values.id ?? orderId([...contentParts(body), received, crypto.randomUUID()]),
    received,
    ...body,
  };
  const problem = checkOrder(cfg, order);
  if (problem) throw new WodError(`Order refused: ${problem}`);

  if (values.dispatch) return await dispatch(order, values, env.value.seal?.recipients ?? []);

  const store = await openStore(root, envName, { config: cfg, privateDir: values.private });
  try {
    const sealedIn = values["email-sealed"];
    const res = await store.recordOrders([order], sealedIn ? { sealed: { [order.id]: sealedIn } } : {});
    for (const w of res.warnings) console.error(`warning: ${w}`);
    if (values.json) {
      console.log(JSON.stringify({ id: order.id, ...res, where: store.where }));
    }
    if (res.duplicates.includes(order.id)) {
      if (!values.json) console.log(`Order ${order.id} was already recorded: nothing changed`);
      return 0;
    }
    if (res.rejected.length > 0) {
      throw new WodError(`Order ${order.id} refused by the seat state: ${res.rejected[0].reason}`);
    }
    if (!values.json) {
      console.log(
        `Recorded order ${order.id}: ${action} ${backend}/${values.seat} ${workshop} in ${store.where}`,
      );
    }
    return 0;
  } finally {
    await store.close();
  }
}

async function dispatch(
  order: Order,
  values: { workflow?: string; ref?: string; json?: boolean },
  recipients: string[],
): Promise<number> {
  const repo = Deno.env.get("GITHUB_REPOSITORY");
  const token = Deno.env.get("GITHUB_TOKEN");
  const baseUrl = Deno.env.get("GITHUB_API_URL") ?? "https://api.github.com";
  if (!repo || !/^[^/]+\/[^/]+$/.test(repo)) {
    throw new WodError(`--dispatch needs GITHUB_REPOSITORY=owner/name (got "${repo ?? ""}")`);
  }
  if (!token) throw new WodError("--dispatch needs GITHUB_TOKEN (a token allowed to run workflows)");
  const [owner, name] = repo.split("/");
  const workflow = values.workflow ?? Deno.env.get("WOD_ORDER_WORKFLOW") ?? "order.yml";
  const ref = values.ref ?? Deno.env.get("GITHUB_REF_NAME") ?? "main";
  // Workflow inputs are visible in the GitHub UI: the email goes only sealed, or not at all.
  if (order.email && recipients.length === 0) {
    console.error(`warning: the email is not dispatched (environment "${order.env}" has no seal.recipients)`);
  }
  const inputs = await dispatchInputs(order, recipients);
  const gh = githubClient({ baseUrl, token, userAgent: "wod-order", log: (l) => console.error(l) });
  try {
    await gh.rest.actions.createWorkflowDispatch({ owner, repo: name, workflow_id: workflow, ref, inputs });
  } catch (err) {
    throw new WodError(`Cannot dispatch workflow ${workflow} on ${repo} (${baseUrl})`, { cause: err });
  }
  if (values.json) console.log(JSON.stringify({ id: order.id, dispatched: { repo, workflow, ref } }));
  else console.log(`Dispatched order ${order.id} to workflow ${workflow} of ${repo} (ref ${ref})`);
  return 0;
}
