// The listener's nudge to the reconciler on the same host: after the drain recorded orders, POST the
// reconciler's /wake URL (orders.reconciler_wake or `wod listen --wake URL`) so they are applied at
// once. Best effort: never delays nor fails the drain (the reconciler polls the state remote anyway).
import type { Order } from "../config/types.gen.ts";
import type { OrderSink } from "./sink.ts";

/** Wraps `sink` so that every batch with newly recorded orders nudges `url` (fire and forget). */
export function wakingSink(
  sink: OrderSink,
  url: string,
  log: (event: string, fields?: Record<string, unknown>) => void,
): OrderSink & { close?(): Promise<void> } {
  const nudge = () => {
    fetch(url, { method: "POST", signal: AbortSignal.timeout(2_000) })
      .then(async (r) => {
        await r.body?.cancel();
        if (!r.ok) log("reconciler-wake-failed", { url, status: r.status });
      })
      .catch((err) => log("reconciler-wake-failed", { url, error: (err as Error).message }));
  };
  const wrapped: OrderSink & { close?(): Promise<void> } = {
    async recordOrders(orders: Order[]) {
      const r = await sink.recordOrders(orders);
      if (r.recorded.length > 0) nudge();
      return r;
    },
  };
  if (sink.recordRefusal) wrapped.recordRefusal = (o, why) => sink.recordRefusal!(o, why);
  const closable = sink as { close?: () => Promise<void> };
  if (typeof closable.close === "function") wrapped.close = () => closable.close!();
  return wrapped;
}
