// Loaded into configurable-http-proxy with `node --require` (NODE_OPTIONS, set by jupyterhub_config.py).
// JupyterHub (tornado with xheaders) takes the client address from X-Real-Ip, and the proxy passes on
// whatever the client sent: a failed login would be logged, and banned by fail2ban, under an address
// of the client's choosing. Every request and upgrade the proxy receives gets X-Real-Ip set to the
// address of the TCP peer, overwriting any client-sent value; requests for the hub (/hub/...) also
// carry X-Wod-Proxy, the secret the hub made at start (WOD_PROXY_SECRET), without which the hub
// ignores forwarded-address headers. Requests for students' servers never carry the secret.
"use strict";
const http = require("http");
const https = require("https");
const SECRET = process.env.WOD_PROXY_SECRET || "";
delete process.env.WOD_PROXY_SECRET;

function peer(req) {
  const a = (req.socket && req.socket.remoteAddress) || "";
  return a.startsWith("::ffff:") ? a.slice(7) : a;
}

for (const Server of [http.Server, https.Server]) {
  const emit = Server.prototype.emit;
  Server.prototype.emit = function (event, req, ...rest) {
    if ((event === "request" || event === "upgrade") && req && req.headers) {
      delete req.headers["x-real-ip"];
      delete req.headers["x-wod-proxy"];
      const ip = peer(req);
      if (ip) req.headers["x-real-ip"] = ip;
      // Only a plain /hub/ path (no dot segments or encoded slashes that could route it elsewhere;
      // the query string does not matter).
      const path = typeof req.url === "string" ? req.url.split("?")[0] : "";
      if (SECRET && path.startsWith("/hub/") && !/\/\.|%2e|%2f|\\/i.test(path)) {
        req.headers["x-wod-proxy"] = SECRET;
      }
    }
    return emit.call(this, event, req, ...rest);
  };
}
