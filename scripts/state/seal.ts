// Personal data kept in recorded state (the participant's email, for reminders) is sealed with age
// to the environment's `seal.recipients`. The identity that opens it lives outside git: the
// environment variable WOD_AGE_IDENTITY (an AGE-SECRET-KEY-1... line) or the file named by
// WOD_AGE_IDENTITY_FILE (age key file format; comment lines allowed).
import * as age from "age-encryption";
import { WodError } from "../common/errors.ts";

export async function seal(text: string, recipients: string[]): Promise<string> {
  if (recipients.length === 0) throw new WodError("Cannot seal: the environment has no seal.recipients");
  const e = new age.Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return age.armor.encode(await e.encrypt(text));
}

export async function unseal(armored: string, identities: string[]): Promise<string> {
  const d = new age.Decrypter();
  for (const i of identities) d.addIdentity(i);
  return await d.decrypt(age.armor.decode(armored), "text");
}

/** Identities from WOD_AGE_IDENTITY / WOD_AGE_IDENTITY_FILE (empty when neither is set). */
export async function identitiesFromEnv(): Promise<string[]> {
  const out: string[] = [];
  const direct = Deno.env.get("WOD_AGE_IDENTITY");
  if (direct) out.push(...keyLines(direct));
  const file = Deno.env.get("WOD_AGE_IDENTITY_FILE");
  if (file) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (err) {
      throw new WodError(`Cannot read the age identity file ${file} (WOD_AGE_IDENTITY_FILE)`, { cause: err });
    }
    const keys = keyLines(text);
    if (keys.length === 0) {
      throw new WodError(`No AGE-SECRET-KEY-1 line in ${file} (WOD_AGE_IDENTITY_FILE)`);
    }
    out.push(...keys);
  }
  return out;
}

function keyLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.startsWith("AGE-SECRET-KEY-1"));
}

export async function newIdentity(): Promise<{ identity: string; recipient: string }> {
  const identity = await age.generateIdentity();
  return { identity, recipient: await age.identityToRecipient(identity) };
}
