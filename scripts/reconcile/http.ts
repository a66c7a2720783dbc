// The reconciler's HTTP endpoint (loopback by default): GET /health (JSON, 200 when acting or on
// standby, 503 when degraded), GET /metrics (Prometheus text format) and POST /wake (the listener's
// nudge after it recorded orders; accepted from loopback clients only).
import type { Reconciler } from "./reconciler.ts";

function isLoopback(addr: Deno.Addr): boolean {
  if (addr.transport !== "tcp") return true;
  const h = (addr as Deno.NetAddr).hostname;
  return h === "::1" || h.startsWith("127.") || h.startsWith("::ffff:127.");
}

export function serveReconciler(
  r: Reconciler,
  listen: { hostname: string; port: number },
): { server: Deno.HttpServer; port: number; url: string } {
  const ready = { port: 0 };
  const server = Deno.serve({
    hostname: listen.hostname,
    port: listen.port,
    onListen: (a) => (ready.port = a.port),
  }, async (req, info) => {
    const path = new URL(req.url).pathname;
    if (req.method === "GET" && path === "/health") {
      const h = await r.health();
      return Response.json(h, { status: h.status === "degraded" ? 503 : 200 });
    }
    if (req.method === "GET" && path === "/metrics") {
      return new Response(r.metrics(), { headers: { "content-type": "text/plain; version=0.0.4" } });
    }
    if (req.method === "POST" && path === "/wake") {
      if (!isLoopback(info.remoteAddr)) {
        return new Response("Wake is accepted from loopback only\n", { status: 403 });
      }
      await req.body?.cancel();
      r.wake("listener");
      return new Response(null, { status: 202 });
    }
    return new Response("Not found: GET /health, GET /metrics, POST /wake\n", { status: 404 });
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    server,
    port: addr.port || ready.port,
    url: `http://${listen.hostname}:${addr.port || ready.port}`,
  };
}
