// The one structured logger and the one redactor. A log entry is an event name and fields
// (`log("order-accepted", { seat: 12 })`), written as JSON lines for machines (the listener, the portal)
// or as text lines for people (`order-accepted seat=12`). Secrets given to the logger, and those given to
// exec.ts, are replaced by `***` (what GitHub Actions prints for a masked value) wherever they appear.

/** What replaces a secret in any output: the marker GitHub Actions uses for masked values. */
export const REDACTED = "***";

/** An event log: what happened, and the fields that say to what. */
export type LogFn = (event: string, fields?: Record<string, unknown>) => void;

/** An event log whose buffered lines can be written out at once (before exit). */
export type Logger = LogFn & { flush: () => void };

/** `text` with every occurrence of each secret (longest first, empty ones ignored) replaced by `***`. */
export function redactText(text: string, secrets: Iterable<string> = []): string {
  const list = [...secrets].filter((s) => s !== "").sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of list) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

/** One text line: the event, then `key=value` per field (strings with spaces or quotes JSON-quoted). */
export function textLine(event: string, fields: Record<string, unknown> = {}): string {
  const parts = [event];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const s = typeof v === "string" ? v : JSON.stringify(v);
    parts.push(`${k}=${typeof v === "string" && /[\s"=]/.test(s) ? JSON.stringify(s) : s}`);
  }
  return parts.join(" ");
}

/** One JSON line (no newline): the time, the event, the fields. */
export function jsonLine(event: string, fields: Record<string, unknown> = {}, now = new Date()): string {
  return JSON.stringify({ t: now.toISOString(), event, ...fields });
}

export interface LoggerOptions {
  /** "json" (default): one JSON object a line; "text": `event key=value ...`. */
  format?: "json" | "text";
  /** Where whole lines (each ending in "\n") go; default standard output. */
  write?: (text: string) => void;
  /** Values never written (replaced by `***`). */
  secrets?: string[];
  /** Write at once instead of once per event-loop turn. */
  sync?: boolean;
}

const stdoutWrite = (s: string) => {
  const bytes = new TextEncoder().encode(s);
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
};

/**
 * A logger writing one line per event. Lines are batched into one write per event-loop turn (a busy
 * listener logs thousands of events a second); `flush()` writes what is pending.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const write = opts.write ?? stdoutWrite;
  const format = opts.format === "text"
    ? textLine
    : (e: string, f?: Record<string, unknown>) => jsonLine(e, f);
  let buf: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (!buf.length) return;
    const text = buf.join("");
    buf = [];
    write(text);
  };
  const log = (event: string, fields: Record<string, unknown> = {}) => {
    buf.push(redactText(format(event, fields), opts.secrets) + "\n");
    if (opts.sync) flush();
    else if (!scheduled) {
      scheduled = true;
      setTimeout(flush, 0);
    }
  };
  return Object.assign(log, { flush });
}
