// The local HTTP test servers' common start: a handler served on a free 127.0.0.1 port.

/** Serves `handler` on 127.0.0.1 with a free port; resolves once it listens, with its base URL. */
export async function serveLoopback(
  handler: Deno.ServeHandler,
): Promise<{ server: Deno.HttpServer; url: string }> {
  const ready = Promise.withResolvers<string>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => ready.resolve(`http://127.0.0.1:${port}`),
  }, handler);
  return { server, url: await ready.promise };
}
