// The one order check: `validateOrder(config, order)` applies the field rules, the configuration (known
// environment, backend and workshop, an active workshop for CREATE, the seat range rule: the seats inside
// the workshop's range and the backend's student pool) and then the JSON schema of an order. Every entry
// calls it once, before it keeps or sends the order: the SMTP listener (scripts/mail/listener.ts, before
// the 250), `wod order` (scripts/cli/order.ts, also for the order.yml hand-over), the portal (before it
// sends an order). The state store and the backend trust a validated order (the store only asserts its
// type, `assertOrderType`). A refusal is one sentence that names what failed and the fix, the same for
// every entry.
import { WodError } from "../common/errors.ts";
import type { Config } from "../config/load.ts";
import type { EnvironmentBackend } from "../config/types.gen.ts";
import { findBackend, requireEnvironment } from "../config/load.ts";
import { validator } from "../config/schema.ts";
import { CUSTOMER_RE, EMAIL_EXPECTED, isSaneEmail, ORDER_ID_RE } from "./check.ts";
import { ACTIONS, isAction, type Order, seatRangeProblem, show } from "./order.ts";

const NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;
const WORKSHOP_RE = /^[A-Za-z][A-Za-z0-9_-]{1,63}$/;
const SOURCES: readonly string[] = ["mail", "dispatch", "cli", "expire", "drift"];

/** An order refused by validateOrder: `problem` is the sentence every entry shows (the message). */
export class OrderInvalidError extends WodError {
  constructor(readonly problem: string, readonly orderId?: string) {
    super(problem);
    this.name = "OrderInvalidError";
  }
}

/**
 * Why `order` does not match schemas/order.schema.json, or undefined. The schema alone, without the
 * configuration: what the state store asserts before it writes.
 */
export function schemaProblem(order: unknown): string | undefined {
  const v = validator("order");
  if (v(order)) return undefined;
  const e = v.errors?.[0];
  const field = e?.instancePath ? `field ${e.instancePath.slice(1).replaceAll("/", ".")}` : "the order";
  return `Invalid order: ${field} ${e?.message ?? "does not match"} (schemas/order.schema.json)`;
}

/**
 * Why `order` cannot be accepted with configuration `cfg`, or undefined: the same checks as
 * validateOrder, as a sentence (the SMTP listener turns it into its 550 reply).
 */
export function orderProblem(cfg: Config, order: unknown): string | undefined {
  if (typeof order !== "object" || order === null || Array.isArray(order)) {
    return "Invalid order: expected one JSON object with id, action, env, backend, workshop, seats, " +
      "source and received";
  }
  const o = order as Record<string, unknown>;
  if (typeof o.id !== "string" || !ORDER_ID_RE.test(o.id)) {
    return `Invalid order id "${show(o.id)}": expected letters, digits, '.', '_', ':' or '-' (at most 128)`;
  }
  if (!isAction(o.action)) {
    return `Unknown action "${show(o.action)}": expected one of ${ACTIONS.join(", ")}`;
  }
  if (typeof o.env !== "string" || !NAME_RE.test(o.env)) {
    return `Invalid environment name "${show(o.env)}": expected lower-case letters, digits and '-'`;
  }
  let env;
  try {
    env = requireEnvironment(cfg, o.env);
  } catch (e) {
    return (e as Error).message;
  }
  if (typeof o.backend !== "string" || !NAME_RE.test(o.backend)) {
    return `Invalid backend name "${show(o.backend)}": expected lower-case letters, digits and '-'`;
  }
  let backend;
  try {
    backend = findBackend(env, o.backend);
  } catch (e) {
    return (e as Error).message;
  }
  if (typeof o.workshop !== "string" || !WORKSHOP_RE.test(o.workshop)) {
    return `Invalid workshop name "${show(o.workshop)}": expected a folder name such as WKSHP-API101`;
  }
  const ws = cfg.workshops.get(o.workshop);
  if (!ws) {
    return `Unknown workshop "${o.workshop}": no workshops/${o.workshop}/workshop.yaml ` +
      "(check the name against the catalog, `wod catalog`)";
  }
  if (o.action === "CREATE" && ws.value.active === false) {
    return `Workshop "${o.workshop}" is not active (active: false in ${ws.file}): ` +
      "set it active to take CREATE orders";
  }
  if (o.mode !== undefined && o.mode !== "WKSHP" && o.mode !== "CHLG") {
    return `Invalid mode "${show(o.mode)}": expected WKSHP or CHLG`;
  }
  const seatProblem = seatRangeProblem(o.seats, o.action);
  if (seatProblem) return seatProblem;
  const seats = o.seats as [number, number];
  const outside = rangeProblem(env.name, env.file, backend, o.workshop, seats) ??
    poolProblem(backend, env.name, seats);
  if (outside) return outside;
  if (o.customer !== undefined && (typeof o.customer !== "string" || !CUSTOMER_RE.test(o.customer))) {
    return `Invalid customer id "${show(o.customer)}": expected 1-64 letters, digits, '_' or '-'`;
  }
  if (o.email !== undefined && (typeof o.email !== "string" || !isSaneEmail(o.email))) {
    return `Invalid email address "${show(o.email)}": ${EMAIL_EXPECTED}`;
  }
  if (!SOURCES.includes(o.source as string)) {
    return `Invalid order source "${show(o.source)}": expected one of ${SOURCES.join(", ")}`;
  }
  if (typeof o.received !== "string" || Number.isNaN(Date.parse(o.received))) {
    const example = "2026-12-03T10:00:00Z";
    return `Invalid received time "${show(o.received)}": expected an ISO-8601 time such as ${example}`;
  }
  // Last, the schema: what the checks above do not say (unknown fields, lengths, the time's format).
  return schemaProblem(order);
}

function seatsText([first, last]: readonly [number, number]): string {
  return first === last ? `Seat ${first} is` : `Seats ${first},${last} are`;
}

/** Why seats [first, last] are not all in the range of `workshop` on `backend`, or undefined. */
function rangeProblem(
  envName: string,
  envFile: string,
  backend: EnvironmentBackend,
  workshop: string,
  seats: readonly [number, number],
): string | undefined {
  const range = backend.ranges?.[workshop];
  const where = `backend "${backend.name}" of environment "${envName}"`;
  if (!range) {
    return `Workshop "${workshop}" has no seat range on ${where}: ` +
      `order it on a backend that has one, or add ranges.${workshop} to that backend in ${envFile}`;
  }
  if (seats[0] >= range[0] && seats[1] <= range[1]) return undefined;
  return `${seatsText(seats)} outside the range [${range[0]}, ${range[1]}] of workshop "${workshop}" ` +
    `on ${where}: order seats inside that range`;
}

/**
 * Why seats [first, last] are not all in the student pool of `backend` (environment `envName`), or
 * undefined: part of the range rule, also what `wod seats` checks (it acts on any seat of the pool).
 */
export function poolProblem(
  backend: EnvironmentBackend,
  envName: string,
  seats: readonly [number, number],
): string | undefined {
  const pool = backend.students;
  if (seats[0] >= pool[0] && seats[1] <= pool[1]) return undefined;
  return `${seatsText(seats)} outside the student pool [${pool[0]}, ${pool[1]}] of backend ` +
    `"${backend.name}" of environment "${envName}": choose seats inside the pool`;
}

/**
 * The one order check (see the top of this file). Returns the order, typed; throws OrderInvalidError
 * whose message names what failed and the fix.
 */
export function validateOrder(cfg: Config, order: unknown): Order {
  const problem = orderProblem(cfg, order);
  if (problem !== undefined) {
    const id = (order as { id?: unknown } | null)?.id;
    throw new OrderInvalidError(problem, typeof id === "string" ? id : undefined);
  }
  return order as Order;
}

/**
 * What the state store asserts of an order it is given (validated by its entry already): the schema's
 * type. Throws OrderInvalidError.
 */
export function assertOrderType(order: unknown): asserts order is Order {
  const problem = schemaProblem(order);
  if (problem !== undefined) {
    const id = (order as { id?: unknown } | null)?.id;
    throw new OrderInvalidError(problem, typeof id === "string" ? id : undefined);
  }
}
