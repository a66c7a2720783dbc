// Loopback networking helpers.
import { WodError } from "./errors.ts";

/** A free TCP port on 127.0.0.1 (and, with `pair`, the next one free too). */
export function freePort(pair = false): number {
  for (let i = 0; i < 50; i++) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    if (!pair || port >= 65535) {
      l.close();
      if (!pair) return port;
      continue;
    }
    try {
      const l2 = Deno.listen({ hostname: "127.0.0.1", port: port + 1 });
      l2.close();
      l.close();
      return port;
    } catch {
      l.close();
    }
  }
  throw new WodError("Cannot find a free pair of TCP ports on 127.0.0.1");
}
