// The syntax of order fields (customer ids, participant addresses, order ids) and order ids themselves.
// The whole order is checked by validateOrder (scripts/orders/validate.ts).
import { createHash } from "node:crypto";
import type { Order } from "./order.ts";

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

export const EMAIL_EXPECTED =
  "expected local@domain (letters, digits and !#$%&'*+/=?^_`{|}~.- before the @, no quotes, spaces or comments)";

export function isSaneEmail(s: string): boolean {
  return s.length <= 254 && EMAIL_RE.test(s) && !s.includes("..") && !s.startsWith(".");
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
