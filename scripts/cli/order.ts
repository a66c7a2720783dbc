// `wod order <create|cleanup|reset|purge> ...`: record an order in state (one commit), or with
// --dispatch start the order workflow through GitHub's workflow_dispatch API. With --order-json the
// whole order comes as JSON (order.yml's `order` input, what the dispatchers send). Either way the order
// is checked once, by validateOrder (scripts/orders/validate.ts).
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError, WodError } from "../common/errors.ts";
import { type Config, loadConfig, requireEnvironment } from "../config/load.ts";
import { contentParts, orderId } from "../orders/check.ts";
import { formatSeats, type Order, parseSeats, show } from "../orders/order.ts";
import { validateOrder } from "../orders/validate.ts";
import { openStore } from "../state/store.ts";
import { githubClient } from "../common/github.ts";
import { dispatchInputs } from "../mail/dispatch.ts";

export const help =
  `Usage: deno task wod order <create|cleanup|reset|purge> --env ENV --workshop ID --seat N [options]
       deno task wod order --order-json JSON|- [--email-sealed ARMOR] [options]

Records an order in the environment's recorded state (one commit; idempotent by order id), or with
--dispatch starts the order workflow (GitHub workflow_dispatch) that records and applies it. The order
is checked once (scripts/orders/validate.ts): known environment, backend and workshop, the seats inside
the workshop's range and the backend's student pool (a range N-M only for reset), the order schema.

Options:
  --env ENV          environment (environments/ENV.yaml)
  --workshop ID      workshop id, e.g. WKSHP-Shell101
  --seat N | N-M     seat number local to the backend (a range N-M only for reset; numbers up to 999999)
  --backend NAME     backend (default: the one whose range for the workshop holds the seat)
  --customer ID      front-end customer id
  --email ADDR       participant email (sealed with age before it is recorded)
  --email-sealed ARMOR  the email already sealed (age armor; the order workflow's email_sealed input)
  --mode WKSHP|CHLG  workshop variant
  --id ID            order id (default: derived from the content and the time; reuse it to retry safely)
  --reason TEXT      why (kept in the ledger)
  --order-json JSON  the whole order as one JSON object (schemas/order.schema.json), or - to read it
                     from stdin: order.yml's \`order\` input. The action and the flags above may be given
                     too; each must then agree with the JSON (order.yml passes its other inputs this way)
  --private DIR      private repo overlay
  --dispatch         call workflow_dispatch instead of committing: GITHUB_API_URL (default
                     https://api.github.com), GITHUB_REPOSITORY (owner/name), GITHUB_TOKEN
  --workflow FILE    workflow to dispatch (default order.yml, or $WOD_ORDER_WORKFLOW)
  --ref REF          git ref for the dispatch (default $GITHUB_REF_NAME or main)
  --json             print the result as JSON`;

const VERBS = { create: "CREATE", cleanup: "CLEANUP", reset: "RESET", purge: "PURGE" } as const;

type Values = {
  env?: string;
  workshop?: string;
  seat?: string;
  backend?: string;
  customer?: string;
  email?: string;
  "email-sealed"?: string;
  mode?: string;
  id?: string;
  reason?: string;
  "order-json"?: string;
  private?: string;
  dispatch?: boolean;
  workflow?: string;
  ref?: string;
  json?: boolean;
};

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
    "order-json": { type: "string" },
    private: { type: "string" },
    dispatch: { type: "boolean" },
    workflow: { type: "string" },
    ref: { type: "string" },
    json: { type: "boolean" },
  }, true);
  const verb = positionals[0];
  const fromJson = values["order-json"] !== undefined;
  if (
    positionals.length > 1 || (verb === undefined && !fromJson) || (verb !== undefined && !(verb in VERBS))
  ) {
    throw new UsageError(
      `Expected one action for "wod order": create, cleanup, reset or purge (got ${
        positionals.join(" ") || "none"
      })`,
    );
  }
  const action = verb === undefined ? undefined : VERBS[verb as keyof typeof VERBS];
  if (fromJson && values.dispatch) {
    throw new UsageError(
      "--order-json records the order it is given; --dispatch sends a new one: use one or the other",
    );
  }
  const root = repoRoot();
  const cfg = await loadConfig(root, { privateDir: values.private });
  const order = fromJson
    ? orderFromJson(await readJsonArg(values["order-json"]!), action, values)
    : orderFromFlags(cfg, action!, values);
  validateOrder(cfg, order);
  const env = requireEnvironment(cfg, order.env);

  if (values.dispatch) return await dispatch(order, values, env.value.seal?.recipients ?? []);

  const store = await openStore(root, order.env, { config: cfg, privateDir: values.private });
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
        `Recorded order ${order.id}: ${order.action} ${order.backend}/${
          formatSeats(order.seats)
        } ${order.workshop} in ${store.where}`,
      );
    }
    return 0;
  } finally {
    await store.close();
  }
}

/** The order the flags describe (not yet validated: validateOrder does that, once). */
function orderFromFlags(cfg: Config, action: Order["action"], values: Values): Order {
  const envName = requireOption("order", values.env, "env");
  const workshop = requireOption("order", values.workshop, "workshop");
  // The range rule (a range only for RESET) is validateOrder's, with the same sentence as every entry.
  const seats = parseSeats(requireOption("order", values.seat, "seat"), { what: "--seat" });
  if (values.mode !== undefined && values.mode !== "WKSHP" && values.mode !== "CHLG") {
    throw new UsageError(`Invalid --mode "${show(values.mode)}": expected WKSHP or CHLG`);
  }
  const env = requireEnvironment(cfg, envName);
  let backend = values.backend;
  if (!backend) {
    const holds = env.value.backends.filter((b) => {
      const r = b.ranges?.[workshop];
      return r && seats[0] >= r[0] && seats[1] <= r[1];
    });
    if (holds.length === 0) {
      throw new WodError(
        `No backend of environment "${envName}" has a range for workshop ${
          show(workshop)
        } holding seat ${values.seat} (${env.file}); name one with --backend`,
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
  return {
    id: values.id ?? orderId([...contentParts(body), received, crypto.randomUUID()]),
    received,
    ...body,
  };
}

/** --order-json TEXT, or - for stdin. */
async function readJsonArg(arg: string): Promise<string> {
  if (arg !== "-") return arg;
  return await new Response(Deno.stdin.readable).text();
}

/**
 * The order of --order-json. The action and the flags given with it must agree with it (order.yml passes
 * its other inputs, which name the run, this way); validateOrder checks the order itself.
 */
function orderFromJson(text: string, action: Order["action"] | undefined, values: Values): Order {
  let order: unknown;
  try {
    order = JSON.parse(text);
  } catch (err) {
    throw new UsageError(
      `Invalid --order-json: not JSON (${
        (err as Error).message
      }); expected one order object (schemas/order.schema.json)`,
    );
  }
  if (typeof order !== "object" || order === null || Array.isArray(order)) {
    throw new UsageError("Invalid --order-json: expected one order object (schemas/order.schema.json)");
  }
  const o = order as Record<string, unknown>;
  const given: [string, string | undefined, unknown][] = [
    ["The action", action, o.action],
    ["--env", values.env, o.env],
    ["--workshop", values.workshop, o.workshop],
    ["--backend", values.backend, o.backend],
    ["--customer", values.customer, o.customer],
    ["--email", values.email, o.email],
    ["--mode", values.mode, o.mode ?? (values.mode === "WKSHP" ? "WKSHP" : undefined)],
    ["--id", values.id, o.id],
    ["--reason", values.reason, o.reason],
  ];
  if (values.seat !== undefined) {
    const seats = Array.isArray(o.seats) && o.seats.length === 2
      ? formatSeats(o.seats as [number, number])
      : o.seats;
    given.push(["--seat", formatSeats(parseSeats(values.seat, { what: "--seat" })), seats]);
  }
  for (const [what, flag, field] of given) {
    if (flag !== undefined && flag !== field) {
      throw new UsageError(
        `${what} ${show(flag)} disagrees with the order of --order-json (${
          show(field ?? "(absent)")
        }): give the same value or leave it out`,
      );
    }
  }
  return order as Order;
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
