// Loaded into configurable-http-proxy with `node --require` (NODE_OPTIONS, set by jupyterhub_config.py).
// JupyterHub (tornado with xheaders) takes the client address from X-Real-Ip, and the proxy passes on
// whatever the client sent: a failed login would be logged, and banned by fail2ban, under an address
// of the client's choosing. Every request and upgrade the proxy receives gets X-Real-Ip set to the
// address of the TCP peer, overwriting any client-sent value.
"use strict";
const http = require("http");
const https = require("https");

function peer(req) {
  const a = (req.socket && req.socket.remoteAddress) || "";
  return a.startsWith("::ffff:") ? a.slice(7) : a;
}

for (const Server of [http.Server, https.Server]) {
  const emit = Server.prototype.emit;
  Server.prototype.emit = function (event, req, ...rest) {
    if ((event === "request" || event === "upgrade") && req && req.headers) {
      delete req.headers["x-real-ip"];
      const ip = peer(req);
      if (ip) req.headers["x-real-ip"] = ip;
    }
    return emit.call(this, event, req, ...rest);
  };
}
