// Optional SMTP AUTH over STARTTLS: swaks and nodemailer authenticate after STARTTLS; AUTH without
// TLS, a wrong password and MAIL without AUTH (require_auth) are refused; nothing recorded for those.
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import nodemailer from "nodemailer";
import { recordedIds, selfSigned, SmtpClient, startTestListener, waitFor } from "./testing.ts";

const AUTH = { user: "frontend", password: "pw-for-tests-only-42" };

Deno.test("SMTP AUTH over STARTTLS: swaks and nodemailer order; without TLS or with a bad password refused", async () => {
  const t = await startTestListener({ tls: await selfSigned(), auth: AUTH, requireAuth: true });
  try {
    const swaks = (extra: string[], subject: string) =>
      exec("swaks", [
        "--server",
        "127.0.0.1",
        "--port",
        String(t.port),
        "--from",
        "api@front.test",
        "--to",
        "wodadmin@b1.test",
        "--header",
        `Subject: ${subject}`,
        "--body",
        "WKSHP-Test",
        ...extra,
      ], { allowFailure: true, redact: [AUTH.password] });
    const ok = await swaks(
      ["--tls", "--auth", "PLAIN", "--auth-user", AUTH.user, "--auth-password", AUTH.password],
      "CREATE 15 6001 tls@example.com",
    );
    assertEquals(ok.code, 0, ok.stdout.slice(-1500) + ok.stderr);
    assertMatch(ok.stdout, /<~\s+235 2\.7\.0 Authentication successful/);
    assertMatch(ok.stdout, /<~\s+250 2\.0\.0 Order \S+ accepted/);
    const login = await swaks(
      ["--tls", "--auth", "LOGIN", "--auth-user", AUTH.user, "--auth-password", AUTH.password],
      "CREATE 16 6002 login@example.com",
    );
    assertEquals(login.code, 0, login.stdout.slice(-1500));
    const bad = await swaks(
      ["--tls", "--auth", "PLAIN", "--auth-user", AUTH.user, "--auth-password", "wrong"],
      "CREATE 17 6003 bad@example.com",
    );
    assert(bad.code !== 0);
    assertMatch(bad.stdout, /535 5\.7\.8 Authentication credentials invalid/);
    const noTls = await swaks(["--quit-after", "FROM"], "CREATE 18 6004 notls@example.com");
    assertMatch(noTls.stdout, /530 5\.7\.0 Authentication required/);
    // AUTH before STARTTLS: refused, the password never crosses in clear text.
    const c = await SmtpClient.connect(t.port);
    await c.reply();
    const ehlo = await c.cmd("EHLO c.test");
    assertMatch(ehlo.text, /STARTTLS/);
    assertEquals(ehlo.text.includes("AUTH"), false, "AUTH not offered before TLS");
    const a = await c.cmd("AUTH PLAIN AGZyb250ZW5kAHB3");
    assertEquals(a.code, 538);
    c.close();

    const tr = nodemailer.createTransport({
      host: "127.0.0.1",
      port: t.port,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: AUTH.user, pass: AUTH.password },
    });
    const info = await tr.sendMail({
      from: "api@front.test",
      to: "wodadmin@b1.test",
      subject: "CREATE 19 6005 nm@example.com",
      text: "WKSHP-Test",
    });
    tr.close();
    assertMatch(String(info.response), /^250 2\.0\.0 Order/);
    await waitFor(() => t.listener.spool.depth === 0 && t.listener.stats.accepted === 3, 10_000, "drain");
    assertEquals((await recordedIds(t.sinkDir)).length, 3, "swaks PLAIN, swaks LOGIN, nodemailer");
    assert(!JSON.stringify(t.logs).includes(AUTH.password), "no password in the logs");
  } finally {
    await t.close();
  }
});
