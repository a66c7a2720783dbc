import * as net from "node:net";
import { join } from "node:path";
import { assert, assertEquals } from "../common/assert.ts";
import { startSmtpSink } from "./smtp_sink.ts";
import { sleep } from "../demo/procs.ts";

/** Opens a mail transaction (MAIL FROM and RCPT TO accepted), then resets the connection (RST). */
function resetInTransaction(port: number): Promise<void> {
  const lines = ["EHLO reset.test", "MAIL FROM:<wod@localhost>", "RCPT TO:<seat@localhost>"];
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let step = 0;
    s.on("error", reject);
    s.on("data", () => {
      if (step < lines.length) s.write(`${lines[step++]}\r\n`);
      else {
        s.resetAndDestroy();
        resolve();
      }
    });
  });
}

Deno.test("the SMTP sink survives a sender reset in the middle of a transaction, records it and keeps accepting", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-sink-" });
  const sink = await startSmtpSink(join(dir, "mail"));
  try {
    // smtp-server reports a reset inside a transaction as an "error" event on the server; without
    // the sink's listener that event ends the whole test process (a killed sender did it once).
    await resetInTransaction(sink.port);
    const end = Date.now() + 5_000;
    while (sink.errors.length === 0 && Date.now() < end) await sleep(50);
    assert(sink.errors.some((e) => /ECONNRESET/.test(e)), `errors: ${JSON.stringify(sink.errors)}`);
    // Still serving: a new client gets the banner.
    const again = await Deno.connect({ hostname: "127.0.0.1", port: sink.port });
    const buf = new Uint8Array(256);
    const n = await again.read(buf);
    again.close();
    assertEquals(new TextDecoder().decode(buf.subarray(0, n ?? 0)).slice(0, 4), "220 ");
  } finally {
    await sink.close();
    await Deno.remove(dir, { recursive: true });
  }
});
