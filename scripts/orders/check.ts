// Order checks shared by the SMTP listener and `wod order`: is this order acceptable for the effective
// configuration? A refusal names exactly what is wrong.
import { createHash } from "node:crypto";
import type { Config } from "../config/load.ts";
import type { Order } from "../config/types.gen.ts";

export type { Order };

export const ACTIONS = ["CREATE", "CLEANUP", "RESET", "PURGE"] as const;
export type Action = typeof ACTIONS[number];

/** Customer ids of the front end: letters, digits, '_' and '-' (never a shell metacharacter). */
export const CUSTOMER_RE = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * Participant addresses: the RFC 5322 dot-atom form in the local part (letters, digits and
 * !#$%&'*+/=?^_`{|}~- in atoms separated by single dots, at most 64 characters), a host name as domain.
 * Refused: quoted local parts, comments, spaces, control and non-ASCII characters, '<>()[],;:\"', IP
 * literals. Every accepted address is safe as an SMTP envelope recipient and as one address of a To:
 * header; no component passes an address to a shell (tests in scripts/mail/frontend_compat_test.ts).
 */
export const EMAIL_RE =
  /^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
export const ORDER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;
const WORKSHOP_RE = /^[A-Za-z][A-Za-z0-9_-]{1,63}$/;

export const EMAIL_EXPECTED =
  "expected local@domain (letters, digits and !#$%&'*+/=?^_`{|}~.- before the @, no quotes, spaces or comments)";

export function isSaneEmail(s: string): boolean {
  return s.length <= 254 && EMAIL_RE.test(s) && !s.includes("..") && !s.startsWith(".");
}

function show(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  // Never echo control characters back (logs, SMTP replies).
  const clean = String(s).replace(/[^\x20-\x7e]/g, "?");
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}

/**
 * Whether `order` can be accepted with configuration `cfg`. Returns undefined when it can, else one
 * sentence saying what is wrong (known action, environment, backend, workshop, seats inside the
 * workshop's range on that backend, customer id and email syntax).
 */
export function checkOrder(cfg: Config, order: Order): string | undefined {
  if (typeof order !== "object" || order === null) return "Order is not an object";
  if (typeof order.id !== "string" || !ORDER_ID_RE.test(order.id)) {
    return `Invalid order id "${
      show(order.id)
    }": expected letters, digits, '.', '_', ':' or '-' (at most 128)`;
  }
  if (!(ACTIONS as readonly string[]).includes(order.action)) {
    return `Unknown action "${show(order.action)}": expected one of ${ACTIONS.join(", ")}`;
  }
  if (typeof order.env !== "string" || !NAME_RE.test(order.env)) {
    return `Invalid environment name "${show(order.env)}"`;
  }
  const env = cfg.environments.get(order.env);
  if (!env) {
    return `Unknown environment "${show(order.env)}": expected one of ${
      [...cfg.environments.keys()].join(", ") || "(none)"
    }`;
  }
  const backend = env.value.backends.find((b) => b.name === order.backend);
  if (!backend) {
    return `Unknown backend "${show(order.backend)}" in environment "${env.name}": expected one of ${
      env.value.backends.map((b) => b.name).join(", ")
    }`;
  }
  if (typeof order.workshop !== "string" || !WORKSHOP_RE.test(order.workshop)) {
    return `Invalid workshop name "${show(order.workshop)}": expected a folder name such as WKSHP-API101`;
  }
  const ws = cfg.workshops.get(order.workshop);
  if (!ws) return `Unknown workshop "${order.workshop}": no workshops/${order.workshop}/workshop.yaml`;
  if (order.action === "CREATE" && ws.value.active === false) {
    return `Workshop "${order.workshop}" is not active (active: false in ${ws.file})`;
  }
  if (order.mode !== undefined && order.mode !== "WKSHP" && order.mode !== "CHLG") {
    return `Invalid mode "${show(order.mode)}": expected WKSHP or CHLG`;
  }
  const s = order.seats;
  if (
    !Array.isArray(s) || s.length !== 2 || !s.every((n) => Number.isSafeInteger(n) && n >= 0)
  ) {
    return `Invalid seats ${show(s)}: expected [first, last] non-negative integers`;
  }
  const [first, last] = s;
  if (first > last) return `Invalid seat range ${first},${last}: the first seat is after the last`;
  if (order.action !== "RESET" && first !== last) {
    return `${order.action} takes one seat, got the range ${first},${last} (only RESET takes a range)`;
  }
  const range = backend.ranges?.[order.workshop];
  const where = `backend "${backend.name}" of environment "${env.name}"`;
  if (!range) return `Workshop "${order.workshop}" has no seat range on ${where}`;
  const seatText = first === last ? `Seat ${first} is` : `Seats ${first},${last} are`;
  if (first < range[0] || last > range[1]) {
    return `${seatText} outside the range [${range[0]}, ${
      range[1]
    }] of workshop "${order.workshop}" on ${where}`;
  }
  const pool = backend.students;
  if (first < pool[0] || last > pool[1]) {
    return `${seatText} outside the student pool [${pool[0]}, ${pool[1]}] of ${where}`;
  }
  if (
    order.customer !== undefined && (typeof order.customer !== "string" || !CUSTOMER_RE.test(order.customer))
  ) {
    return `Invalid customer id "${show(order.customer)}": expected 1-64 letters, digits, '_' or '-'`;
  }
  if (order.email !== undefined && (typeof order.email !== "string" || !isSaneEmail(order.email))) {
    return `Invalid email address "${show(order.email)}": ${EMAIL_EXPECTED}`;
  }
  if (!["mail", "dispatch", "cli", "expire", "drift"].includes(order.source)) {
    return `Invalid order source "${show(order.source)}"`;
  }
  if (typeof order.received !== "string" || Number.isNaN(Date.parse(order.received))) {
    return `Invalid received time "${show(order.received)}": expected ISO-8601`;
  }
  return undefined;
}

/**
 * Deterministic order id from content (when there is no Message-ID): `c-` + 40 hex digits of the
 * SHA-256 of the parts. The same parts always give the same id, so a resent order is recorded once.
 */
export function orderId(parts: readonly (string | number | undefined | null)[]): string {
  const h = createHash("sha256").update(JSON.stringify(parts.map((p) => p ?? null))).digest("hex");
  return `c-${h.slice(0, 40)}`;
}

/**
 * Order id from a Message-ID header value and the order's content: `m-` + 40 hex digits of the SHA-256
 * (any bytes are safe). A resent delivery (same Message-ID, same order) has the same id; a Message-ID
 * reused for a different order does not make that order a duplicate.
 */
export function messageOrderId(
  messageId: string,
  parts: readonly (string | number | undefined | null)[] = [],
): string {
  const norm = messageId.trim().replace(/^<|>$/g, "").toLowerCase();
  const h = createHash("sha256").update(JSON.stringify([norm, ...parts.map((p) => p ?? null)])).digest("hex");
  return `m-${h.slice(0, 40)}`;
}

/** The content parts an order id is computed from (everything but the time it arrived). */
export function contentParts(o: Omit<Order, "id" | "received">): (string | number | undefined)[] {
  return [
    o.env,
    o.backend,
    o.action,
    o.workshop,
    o.mode,
    o.seats[0],
    o.seats[1],
    o.customer,
    o.email,
    o.source,
  ];
}
