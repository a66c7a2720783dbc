// Orders from the portal to our listener, over SMTP (nodemailer): the signed format (Subject
// WOD-ORDER, HMAC-SHA256, see scripts/mail/README.md) by default, or the original subject/body format
// (`CREATE <seat> <customerId> <email>`, body the workshop), which makes the portal a drop-in for the
// original front end. The original format carries a fixed Message-ID per outbox item, so a resent
// order has the same id at the listener and is recorded once.
import nodemailer from "nodemailer";
import { WodError } from "../common/errors.ts";
import { NATIVE_SUBJECT, nativeBody } from "../orders/parse.ts";
import type { Order } from "../orders/order.ts";
import type { Environment, EnvironmentBackend } from "../config/types.gen.ts";

export type OrderFormat = "signed" | "original";

export interface PortalOrder {
  action: "CREATE" | "CLEANUP";
  backend: string;
  workshop: string;
  seat: number;
  customer: string;
  /** Only in the original format (its CREATE subject requires it); the signed format leaves it out. */
  email?: string;
  /** Unique per outbox item: the Message-ID of the original format. */
  key: string;
}

/**
 * The order a portal order becomes at the listener (the id is the outbox key; the listener derives its
 * own from the Message-ID or the signature): what the portal validates before it sends it.
 */
export function orderOf(env: string, o: PortalOrder, received: string): Order {
  return {
    id: o.key,
    action: o.action,
    env,
    backend: o.backend,
    workshop: o.workshop,
    seats: [o.seat, o.seat],
    customer: o.customer,
    ...(o.email !== undefined ? { email: o.email } : {}),
    source: "mail",
    received,
  };
}

export interface OrderSender {
  send(o: PortalOrder): Promise<void>;
  close(): void;
}

function hostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  if (!m) throw new WodError(`Invalid orders.listen "${text}": expected HOST:PORT`);
  return { host: m[1], port: Number(m[2]) };
}

export function orderMessage(
  env: Environment,
  format: OrderFormat,
  o: PortalOrder,
  hmacKey: string | undefined,
  nowSec = Math.floor(Date.now() / 1000),
): { subject: string; text: string; messageId?: string } {
  if (format === "signed") {
    if (!hmacKey) {
      throw new WodError(
        `The portal sends signed orders but has no HMAC key: set orders.hmac_secret_env in environments/${env.name}.yaml and that variable, or portal.order_format: original`,
      );
    }
    return {
      subject: NATIVE_SUBJECT,
      text: nativeBody(hmacKey, {
        action: o.action,
        env: env.name,
        backend: o.backend,
        workshop: o.workshop,
        seats: [o.seat, o.seat],
        customer: o.customer,
        ts: nowSec,
      }) + "\n",
    };
  }
  const subject = o.action === "CREATE"
    ? `CREATE ${o.seat} ${o.customer} ${o.email ?? ""}`.trim()
    : `${o.action} ${o.seat} ${o.customer}`;
  return { subject, text: `${o.workshop}\n`, messageId: `<${o.key}@wod-portal.${env.name}>` };
}

export function orderSender(
  env: Environment,
  opts: { format: OrderFormat; hmacKey?: string; sender?: string; listen?: string },
): OrderSender {
  const { host, port } = hostPort(opts.listen ?? env.orders?.listen ?? "127.0.0.1:10025");
  const local = host === "127.0.0.1" || host === "localhost" || host === "::1";
  const from = opts.sender ?? env.orders?.senders?.[0] ?? `${env.admin_user ?? "wodadmin"}@localhost`;
  const recipient = env.orders?.recipient ?? env.admin_user ?? "wodadmin";
  const authUser = env.orders?.auth_user;
  const authPass = env.orders?.auth_password_env ? Deno.env.get(env.orders.auth_password_env) : undefined;
  const transport = nodemailer.createTransport({
    host,
    port,
    secure: false,
    ignoreTLS: local && !authUser,
    pool: true,
    maxConnections: 5,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
    ...(authUser && authPass ? { auth: { user: authUser, pass: authPass } } : {}),
  });
  const backends = new Map<string, EnvironmentBackend>(env.backends.map((b) => [b.name, b]));
  return {
    async send(o) {
      const b = backends.get(o.backend);
      if (!b) throw new WodError(`Backend "${o.backend}" is not in environment ${env.name}`);
      const msg = orderMessage(env, opts.format, o, opts.hmacKey);
      try {
        await transport.sendMail({
          envelope: { from, to: `${recipient}@${b.fqdn ?? b.host}` },
          from,
          to: `${recipient}@${b.fqdn ?? b.host}`,
          subject: msg.subject,
          text: msg.text,
          ...(msg.messageId ? { messageId: msg.messageId } : {}),
        });
      } catch (err) {
        throw new WodError(
          `The order listener ${host}:${port} refused or lost the ${o.action} order for ${o.backend}/${o.seat}: ${
            (err as Error).message
          }`,
        );
      }
    },
    close() {
      transport.close();
    },
  };
}
