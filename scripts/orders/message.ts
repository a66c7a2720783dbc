// From a received email to an Order: format detection, header sanity, ids.
import type { Order } from "./order.ts";
import { contentParts, messageOrderId, orderId } from "./check.ts";
import {
  header,
  NATIVE_SUBJECT,
  OrderError,
  type OrderFields,
  parseLegacy,
  parseNative,
  splitMessage,
  textBody,
} from "./parse.ts";

export interface MessageContext {
  env: string;
  /** The backend the recipient address selected. */
  backend: string;
  /** HMAC key for the native format (undefined: signed orders refused). */
  hmacKey?: string | Uint8Array;
  /** Unix seconds, for the replay window. */
  now?: number;
  replayWindowSeconds?: number;
  received?: Date;
  /**
   * What makes this delivery unique (e.g. process, session and sequence): part of the id of an unsigned
   * order without Message-ID, so the same order sent twice is two orders. Default: a random UUID.
   */
  delivery?: string;
}

export interface MessageOrder {
  order: Order;
  format: "legacy" | "native";
  /** The HMAC of a native order (the caller refuses a signature it has already seen). */
  sig?: string;
}

/** Parse one received message (the DATA, dot-unstuffed, as a latin1/binary string) into an order. */
export function orderFromMessage(raw: string, ctx: MessageContext): MessageOrder {
  const msg = splitMessage(raw);
  const subjects = msg.headers.filter((h) => h.name === "subject");
  if (subjects.length === 0) {
    throw new OrderError(
      "No Subject header: expected the order in the subject, e.g. CREATE <seat> <customerId> <email>",
    );
  }
  if (subjects.length > 1) throw new OrderError(`${subjects.length} Subject headers: expected exactly one`);
  for (const name of ["message-id", "content-type", "content-transfer-encoding"]) {
    if (msg.headers.filter((h) => h.name === name).length > 1) {
      throw new OrderError(`Duplicate ${name} header`);
    }
  }
  const subject = subjects[0].value.trim();
  const body = textBody(msg);
  const received = (ctx.received ?? new Date()).toISOString();
  const messageId = header(msg, "message-id");
  let fields: OrderFields;
  let format: "legacy" | "native" = "legacy";
  let sig: string | undefined;
  if (subject === NATIVE_SUBJECT) {
    format = "native";
    const n = parseNative(body, ctx.hmacKey);
    if (n.env !== ctx.env) {
      throw new OrderError(
        `Signed order is for environment "${n.env}", this listener serves "${ctx.env}"`,
        550,
        "5.7.1",
      );
    }
    if (n.backend !== ctx.backend) {
      throw new OrderError(
        `Signed order is for backend "${n.backend}" but was addressed to backend "${ctx.backend}"`,
        550,
        "5.7.1",
      );
    }
    const now = ctx.now ?? Math.floor(Date.now() / 1000);
    const window = ctx.replayWindowSeconds ?? 300;
    if (Math.abs(now - n.ts) > window) {
      throw new OrderError(
        `Signed order timestamp ${n.ts} is ${
          now - n.ts
        } s from now, outside the replay window of ${window} s`,
        550,
        "5.7.1",
      );
    }
    sig = n.sig;
    fields = n;
  } else {
    fields = parseLegacy(subject, body);
  }
  const base = {
    action: fields.action,
    env: ctx.env,
    backend: ctx.backend,
    workshop: fields.workshop,
    ...(fields.mode ? { mode: fields.mode } : {}),
    seats: fields.seats,
    ...(fields.customer !== undefined ? { customer: fields.customer } : {}),
    ...(fields.email !== undefined ? { email: fields.email } : {}),
    source: "mail" as const,
  };
  // Ids are fixed here, before the order is spooled and acknowledged: a crash-replayed spool segment
  // carries the same ids (idempotent), while every delivery of an order without Message-ID is new.
  const id = sig
    ? `s-${sig.slice(0, 40)}`
    : messageId
    ? messageOrderId(messageId, contentParts(base))
    : orderId([...contentParts(base), received, ctx.delivery ?? crypto.randomUUID()]);
  return { order: { id, ...base, received }, format, sig };
}
