// A local SMTP sink for tests (npm smtp-server): accepts every message on 127.0.0.1 and writes it
// as <n>.eml into a directory; `messages()` parses them (mailparser), `waitFor` polls.
import { SMTPServer } from "smtp-server";
import { simpleParser } from "mailparser";
import { join } from "node:path";
import { Buffer } from "node:buffer";

export interface SinkMessage {
  file: string;
  from: string;
  to: string[];
  subject: string;
  text: string;
}

export class SmtpSink {
  port = 0;
  /** Connection errors the server reported (a client that reset its socket, for example). */
  readonly errors: string[] = [];
  private server: SMTPServer;
  private n = 0;

  constructor(readonly dir: string) {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      banner: "wod test sink",
      onData: (stream, session, callback) => {
        const chunks: Uint8Array[] = [];
        stream.on("data", (c: Uint8Array) => chunks.push(c));
        stream.on("end", () => {
          const file = join(this.dir, `${String(++this.n).padStart(4, "0")}.eml`);
          const head =
            `X-Sink-From: ${session.envelope.mailFrom ? session.envelope.mailFrom.address : ""}\r\n` +
            `X-Sink-To: ${session.envelope.rcptTo.map((r: { address: string }) => r.address).join(", ")}\r\n`;
          const data = new Uint8Array([...new TextEncoder().encode(head), ...concat(chunks)]);
          Deno.writeFile(file, data, { mode: 0o600 }).then(() => callback(), (err) => callback(err));
        });
      },
    });
    // smtp-server emits a client's socket error (ECONNRESET when a sender is killed mid-conversation)
    // on the server: without a listener that event would end the whole test process.
    this.server.on("error", (e: Error) => this.errors.push(e.message));
  }

  /** Listens on 127.0.0.1:`port` (default: any free port). */
  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => resolve());
    });
    // deno-lint-ignore no-explicit-any
    this.port = (this.server as any).server.address().port;
    return this;
  }

  async messages(): Promise<SinkMessage[]> {
    const out: SinkMessage[] = [];
    const names: string[] = [];
    for await (const e of Deno.readDir(this.dir)) if (e.name.endsWith(".eml")) names.push(e.name);
    for (const name of names.sort()) {
      const file = join(this.dir, name);
      const raw = await Deno.readFile(file);
      const parsed = await simpleParser(Buffer.from(raw), {});
      out.push({
        file,
        from: String(parsed.headers.get("x-sink-from") ?? ""),
        to: String(parsed.headers.get("x-sink-to") ?? "").split(", ").filter(Boolean),
        subject: parsed.subject ?? "",
        text: parsed.text ?? "",
      });
    }
    return out;
  }

  async waitFor(pred: (m: SinkMessage) => boolean, timeoutMs = 10_000): Promise<SinkMessage> {
    const end = Date.now() + timeoutMs;
    while (true) {
      const hit = (await this.messages()).find(pred);
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`No matching message in the SMTP sink after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Starts a sink writing into `dir` (created if needed). */
export async function startSmtpSink(dir: string, port = 0): Promise<SmtpSink> {
  await Deno.mkdir(dir, { recursive: true });
  return await new SmtpSink(dir).start(port);
}
