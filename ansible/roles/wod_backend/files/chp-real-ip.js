// Loaded into configurable-http-proxy with `node --require` (NODE_OPTIONS, set by jupyterhub_config.py).
// JupyterHub (tornado with xheaders) takes the client address from X-Real-Ip, and the proxy passes on
// whatever it received: a failed login would be logged, and banned by fail2ban, under an address of
// the sender's choosing. So every request and upgrade the proxy receives gets X-Real-Ip set to the
// address of the TCP peer, overwriting any client-sent value, except when it comes from nginx (the
// public entry, which sets X-Real-Ip to its own client's address): nginx proves itself with the secret
// X-Wod-Edge (WOD_EDGE_SECRET; a student's process connecting to the proxy has no such secret).
// Requests for the hub (/hub/...) also carry X-Wod-Proxy, the secret the hub made at start
// (WOD_PROXY_SECRET), without which the hub ignores forwarded-address headers. Requests for students'
// servers never carry either secret.
"use strict";
const crypto = require("crypto");
const http = require("http");
const https = require("https");
const SECRET = process.env.WOD_PROXY_SECRET || "";
const EDGE = Buffer.from(process.env.WOD_EDGE_SECRET || "");
delete process.env.WOD_PROXY_SECRET;
delete process.env.WOD_EDGE_SECRET;

function peer(req) {
  const a = (req.socket && req.socket.remoteAddress) || "";
  return a.startsWith("::ffff:") ? a.slice(7) : a;
}

function fromEdge(req) {
  const got = Buffer.from(String(req.headers["x-wod-edge"] || ""));
  return EDGE.length > 0 && got.length === EDGE.length && crypto.timingSafeEqual(got, EDGE);
}

for (const Server of [http.Server, https.Server]) {
  const emit = Server.prototype.emit;
  Server.prototype.emit = function (event, req, ...rest) {
    if ((event === "request" || event === "upgrade") && req && req.headers) {
      const edge = fromEdge(req);
      const forwarded = String(req.headers["x-real-ip"] || "");
      delete req.headers["x-real-ip"];
      delete req.headers["x-wod-proxy"];
      delete req.headers["x-wod-edge"];
      const ip = edge && /^[0-9a-fA-F.:]{2,45}$/.test(forwarded) ? forwarded : peer(req);
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
