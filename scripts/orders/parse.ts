// Order emails: the original subject/body format and the native signed format.
//
// Original (docs/interop.md): `Subject: CREATE <seat> <customer> <email>` (or CLEANUP/PURGE <seat> <customer>, RESET <seat>
// <customer>, RESET <min>,<max> <customer>); the body is the workshop folder name. `CHLG-...` in the
// body is the challenge variant of the `WKSHP-...` folder. The original sender writes no blank line
// between the headers and the body, so the header block ends at the first line that is not a header.
//
// Native: `Subject: WOD-ORDER`, the body one JSON object
//   {"v":1,"action":"CREATE","env":"local","backend":"jup1","workshop":"WKSHP-X","mode":"CHLG"?,
//    "seats":[3,3],"customer":"42"?,"email":"a@b.c"?,"ts":<unix seconds>,"sig":"<hex>"}
// where sig = hex(HMAC-SHA256(key, canonical(fields))), see `canonicalOrder`. Orders whose ts is
// outside the replay window, or whose signature was already seen, are refused (scripts/mail).
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import { CUSTOMER_RE, EMAIL_EXPECTED, isSaneEmail } from "./check.ts";
import { type Action, ACTIONS, isAction, isSeatNumber, SEAT_PATTERN, seatRangeProblem } from "./order.ts";

export interface ParsedMessage {
  headers: { name: string; value: string }[];
  body: string;
}

/** A refusal of the message content: `code` is the SMTP reply code to send. */
export class OrderError extends Error {
  constructor(message: string, readonly code = 550, readonly enhanced = "5.6.0") {
    super(message);
    this.name = "OrderError";
  }
}

const HEADER_RE = /^([!-9;-~]+):[ \t]*(.*)$/s;
const BAD_CHARS = /[^\x20-\x7e\t]/;

function visible(v: unknown): string {
  const t = String(v).replace(/[^\x20-\x7e]/g, "?");
  return t.length > 80 ? `${t.slice(0, 77)}...` : t;
}

/**
 * Split a message (lines already un-dot-stuffed, any of CRLF/LF) into headers and body. Lenient like
 * the original transport: no blank line is needed after the headers.
 */
export function splitMessage(raw: string): ParsedMessage {
  const lines = raw.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const headers: { name: string; value: string }[] = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const l = lines[i];
    if (l === "") {
      i++;
      break;
    }
    if ((l.startsWith(" ") || l.startsWith("\t")) && headers.length) {
      headers[headers.length - 1].value += " " + l.trim();
      continue;
    }
    const m = HEADER_RE.exec(l);
    if (!m) break;
    headers.push({ name: m[1].toLowerCase(), value: m[2] });
  }
  return { headers, body: lines.slice(i).join("\n") };
}

export function header(msg: ParsedMessage, name: string): string | undefined {
  return msg.headers.find((h) => h.name === name)?.value;
}

function decodeQP(s: string): string {
  return s.replace(/=\r?\n/g, "").replace(
    /=([0-9A-Fa-f]{2})/g,
    (_, h) => String.fromCharCode(parseInt(h, 16)),
  );
}

/** The text body of a single-part message (7bit, 8bit, quoted-printable or base64). */
export function textBody(msg: ParsedMessage): string {
  const ctype = (header(msg, "content-type") ?? "text/plain").toLowerCase();
  if (!ctype.startsWith("text/plain")) {
    throw new OrderError(`Unsupported content type "${visible(ctype)}": expected a text/plain body`);
  }
  const cte = (header(msg, "content-transfer-encoding") ?? "7bit").trim().toLowerCase();
  if (cte === "7bit" || cte === "8bit" || cte === "binary") return msg.body;
  if (cte === "quoted-printable") return decodeQP(msg.body);
  if (cte === "base64") {
    const b64 = msg.body.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new OrderError("Invalid base64 body");
    return atob(b64);
  }
  throw new OrderError(`Unsupported Content-Transfer-Encoding "${visible(cte)}"`);
}

/** The fields of an order, before it gets an id, environment, backend and time. */
export interface OrderFields {
  action: Action;
  workshop: string;
  mode?: "CHLG";
  seats: [number, number];
  customer?: string;
  email?: string;
}

const SEAT = `(${SEAT_PATTERN})`;
const CUST = "([A-Za-z0-9_-]{1,64})";
const SUBJECT_RES: [RegExp, (m: RegExpExecArray) => Omit<OrderFields, "workshop">][] = [
  [
    new RegExp(`^CREATE ${SEAT} ${CUST} (\\S+)$`),
    (m) => ({ action: "CREATE", seats: [+m[1], +m[1]], customer: m[2], email: m[3] }),
  ],
  [
    new RegExp(`^(CLEANUP|PURGE) ${SEAT} ${CUST}$`),
    (m) => ({ action: m[1] as Action, seats: [+m[2], +m[2]], customer: m[3] }),
  ],
  [
    new RegExp(`^RESET ${SEAT}(?:,${SEAT})? ${CUST}$`),
    (m) => ({ action: "RESET", seats: [+m[1], m[2] === undefined ? +m[1] : +m[2]], customer: m[3] }),
  ],
];

const USAGE: Record<Action, string> = {
  CREATE: "CREATE <seat> <customerId> <email>",
  CLEANUP: "CLEANUP <seat> <customerId>",
  RESET: "RESET <seat> <customerId> or RESET <min>,<max> <customerId>",
  PURGE: "PURGE <seat> <customerId>",
};

/** Parse the workshop line of the body: `WKSHP-X`, or `CHLG-X` for the challenge variant of `WKSHP-X`. */
export function parseWorkshopBody(body: string): { workshop: string; mode?: "CHLG" } {
  if (BAD_CHARS.test(body.replace(/\n/g, ""))) {
    throw new OrderError(
      "The body contains non-ASCII or control characters: expected only the workshop name",
    );
  }
  const lines = body.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  if (lines.length === 0) throw new OrderError("Empty body: expected the workshop name, e.g. WKSHP-API101");
  if (lines.length > 1) {
    throw new OrderError(
      `The body has ${lines.length} non-empty lines: expected only the workshop name, e.g. WKSHP-API101`,
    );
  }
  const name = lines[0];
  if (!/^[A-Za-z][A-Za-z0-9_-]{1,63}$/.test(name)) {
    throw new OrderError(
      `Invalid workshop name "${visible(name)}": expected a folder name such as WKSHP-API101`,
    );
  }
  if (name.startsWith("CHLG-")) return { workshop: `WKSHP-${name.slice(5)}`, mode: "CHLG" };
  return { workshop: name };
}

/** Parse an order in the original format (subject + body). Throws OrderError saying what is wrong. */
export function parseLegacy(subject: string, body: string): OrderFields {
  if (BAD_CHARS.test(subject)) {
    throw new OrderError("The subject contains non-ASCII or control characters");
  }
  const s = subject.trim().replace(/[ \t]+/g, " ");
  if (s === "") {
    throw new OrderError("Empty subject: expected an order such as CREATE <seat> <customerId> <email>");
  }
  const verb = s.split(" ")[0];
  if (!isAction(verb)) {
    throw new OrderError(
      `Unknown action "${visible(verb)}" in the subject: expected one of ${ACTIONS.join(", ")}`,
    );
  }
  let fields: Omit<OrderFields, "workshop"> | undefined;
  for (const [re, make] of SUBJECT_RES) {
    const m = re.exec(s);
    if (m) {
      fields = make(m);
      break;
    }
  }
  if (!fields) {
    throw new OrderError(`Malformed subject "${visible(s)}": expected ${USAGE[verb as Action]}`);
  }
  if (fields.email !== undefined && !isSaneEmail(fields.email)) {
    throw new OrderError(
      `Invalid email address "${visible(fields.email)}": ${EMAIL_EXPECTED}`,
    );
  }
  const seatProblem = seatRangeProblem(fields.seats, fields.action);
  if (seatProblem) throw new OrderError(seatProblem);
  const w = parseWorkshopBody(body);
  return { ...fields, ...w };
}

// ---------- native signed format ----------

export const NATIVE_SUBJECT = "WOD-ORDER";

export interface SignedFields extends OrderFields {
  env: string;
  backend: string;
  /** Unix time (seconds) the order was signed. */
  ts: number;
}

/** The exact bytes that are signed: one field per line, fixed order, empty for absent fields. */
export function canonicalOrder(f: SignedFields): string {
  return [
    "wod-order-v1",
    f.action,
    f.env,
    f.backend,
    f.workshop,
    f.mode ?? "",
    String(f.seats[0]),
    String(f.seats[1]),
    f.customer ?? "",
    f.email ?? "",
    String(f.ts),
  ].join("\n");
}

export function signOrder(key: string | Uint8Array, f: SignedFields): string {
  return createHmac("sha256", key).update(canonicalOrder(f)).digest("hex");
}

/** The body of a native order email for `f`, signed with `key` (for front ends and tests). */
export function nativeBody(key: string | Uint8Array, f: SignedFields): string {
  return JSON.stringify({ v: 1, ...f, sig: signOrder(key, f) });
}

export interface NativeOrder extends SignedFields {
  sig: string;
}

/**
 * Parse and authenticate a native order body. Checks the field syntax and the HMAC (constant time);
 * the caller checks the replay window and signature reuse.
 */
export function parseNative(body: string, key: string | Uint8Array | undefined): NativeOrder {
  if (key === undefined || key.length === 0) {
    throw new OrderError("Signed orders are not enabled for this environment (no HMAC key)", 550, "5.7.1");
  }
  if (BAD_CHARS.test(body.replace(/\n/g, ""))) {
    throw new OrderError("The signed order body contains non-ASCII or control characters");
  }
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(body.trim());
  } catch {
    throw new OrderError("The signed order body is not one JSON object");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new OrderError("The signed order body is not one JSON object");
  }
  const allowed = [
    "v",
    "action",
    "env",
    "backend",
    "workshop",
    "mode",
    "seats",
    "customer",
    "email",
    "ts",
    "sig",
  ];
  const extra = Object.keys(v).filter((k) => !allowed.includes(k));
  if (extra.length) {
    throw new OrderError(`Unknown field(s) in the signed order: ${visible(extra.join(", "))}`);
  }
  if (v.v !== 1) {
    throw new OrderError(`Unsupported signed order version ${visible(JSON.stringify(v.v))}: expected 1`);
  }
  const str = (k: string, re: RegExp, optional = false): string | undefined => {
    const x = v[k];
    if (x === undefined && optional) return undefined;
    if (typeof x !== "string" || !re.test(x)) {
      throw new OrderError(
        `Invalid or missing field "${k}" in the signed order: ${visible(JSON.stringify(x))}`,
      );
    }
    return x;
  };
  const action = v.action;
  if (!isAction(action)) {
    throw new OrderError(
      `Unknown action ${visible(JSON.stringify(v.action))}: expected one of ${ACTIONS.join(", ")}`,
    );
  }
  const env = str("env", /^[a-z][a-z0-9-]{0,31}$/)!;
  const backend = str("backend", /^[a-z][a-z0-9-]{0,31}$/)!;
  const workshop = str("workshop", /^[A-Za-z][A-Za-z0-9_-]{1,63}$/)!;
  const mode = str("mode", /^CHLG$/, true) as "CHLG" | undefined;
  const customer = str("customer", CUSTOMER_RE, true);
  const email = v.email === undefined ? undefined : String(v.email);
  if (email !== undefined && (typeof v.email !== "string" || !isSaneEmail(email))) {
    throw new OrderError(`Invalid email address "${visible(email)}" in the signed order`);
  }
  const seats = v.seats;
  if (
    !Array.isArray(seats) || seats.length !== 2 ||
    !seats.every(isSeatNumber)
  ) {
    throw new OrderError(`Invalid field "seats" in the signed order: expected [first, last]`);
  }
  if (!Number.isSafeInteger(v.ts) || (v.ts as number) < 0) {
    throw new OrderError(`Invalid field "ts" in the signed order: expected Unix seconds`);
  }
  const sig = str("sig", /^[0-9a-f]{64}$/)!;
  const f: SignedFields = {
    action,
    env,
    backend,
    workshop,
    ...(mode ? { mode } : {}),
    seats: [seats[0], seats[1]],
    ...(customer !== undefined ? { customer } : {}),
    ...(email !== undefined ? { email } : {}),
    ts: v.ts as number,
  };
  const want = Buffer.from(signOrder(key, f), "hex");
  if (!timingSafeEqual(want, Buffer.from(sig, "hex"))) {
    throw new OrderError("Bad signature: the HMAC of the signed order does not match", 550, "5.7.1");
  }
  return { ...f, sig };
}
