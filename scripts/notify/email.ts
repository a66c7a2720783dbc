// Emails to the participant (credentials after CREATE, reminder before the end) with nodemailer,
// from the text templates in templates/email/ (first line "Subject: ...", then a blank line, then
// the body; {{ NAME }} placeholders). A value missing from the template's variables is an error.
import nodemailer from "nodemailer";
import { WodError } from "../common/errors.ts";
import type { EnvironmentMail } from "../config/types.gen.ts";

export const TEMPLATE_DIR = new URL("../../templates/email/", import.meta.url);

export interface Rendered {
  subject: string;
  text: string;
}

export function render(template: string, vars: Record<string, string | number>, name = "template"): Rendered {
  const filled = template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_m, k: string) => {
    if (!(k in vars)) {
      throw new WodError(`Email template ${name} uses {{ ${k} }} but no value is given for it`);
    }
    return String(vars[k]);
  });
  const m = /^Subject: (.*)\r?\n\r?\n([\s\S]*)$/.exec(filled);
  if (!m) throw new WodError(`Email template ${name} must start with "Subject: ..." and a blank line`);
  return { subject: m[1].trim(), text: m[2] };
}

export async function renderTemplate(
  name: string,
  vars: Record<string, string | number>,
  dir: URL | string = TEMPLATE_DIR,
): Promise<Rendered> {
  const file = typeof dir === "string"
    ? `${dir.replace(/\/$/, "")}/${name}.txt`
    : new URL(`${name}.txt`, dir);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    throw new WodError(`Cannot read email template ${file}`, { cause: err });
  }
  return render(text, vars, `${name}.txt`);
}

export interface Mailer {
  send(to: string, msg: Rendered): Promise<void>;
  close(): void;
}

export function mailer(mail: EnvironmentMail): Mailer {
  const host = mail.smtp_host ?? "127.0.0.1";
  const port = mail.smtp_port ?? 25;
  const local = host === "127.0.0.1" || host === "localhost" || host === "::1";
  // SMTP credentials come from the environment (GitHub environment secrets), never from git.
  const user = Deno.env.get("WOD_SMTP_USERNAME");
  const pass = Deno.env.get("WOD_SMTP_PASSWORD");
  const transport = nodemailer.createTransport({
    host,
    port,
    secure: port === 465,
    ignoreTLS: local,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 30_000,
    ...(user && pass ? { auth: { user, pass } } : {}),
  });
  return {
    async send(to, msg) {
      try {
        await transport.sendMail({
          from: mail.from ?? "wod@localhost",
          to,
          subject: msg.subject,
          text: msg.text,
        });
      } catch (err) {
        // The message text holds the password: only the SMTP error is reported.
        throw new WodError(`Cannot send email through ${host}:${port}: ${(err as Error).message}`);
      }
    },
    close() {
      transport.close();
    },
  };
}
