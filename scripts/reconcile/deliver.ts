// Deliver: what reaches people after a backend run. Credentials of a created seat go to the front end
// (notify/frontend.ts) and/or the participant (notify/email.ts, the sealed address opened here); every
// other action is reported to the front end as the original backend did. Also the hub API side of a
// CREATE: the servers of new seats are started after their password is out (backend/hub.ts).
import { hubUrlFor } from "../config/connection.ts";
import type { Config } from "../config/load.ts";
import type { Environment, EnvironmentBackend, Seat, SeatPendingAction } from "../config/types.gen.ts";
import { WodError } from "../common/errors.ts";
import { seatKey } from "../state/store.ts";
import { identitiesFromEnv, unseal } from "../state/seal.ts";
import { FrontendClient } from "../notify/frontend.ts";
import { type Mailer, mailer, renderTemplate } from "../notify/email.ts";
import { connectionFor, type SeatResult } from "../backend/seats.ts";
import { HubClient } from "../backend/hub.ts";
import type { SeatAction } from "../state/machine.ts";
import type { Step } from "./commit.ts";

/** A front-end callback: what the original backend reported for one action of a seat. */
export interface Callback {
  action: SeatAction;
  dbStudentId: number;
  customer?: string;
  password?: string;
  completion?: number;
  heldForReset?: boolean;
}

/** Credentials delivered (and hub servers started) at most this many at a time. */
export const DELIVERY_PARALLEL = 8;

/** Runs fn over items, at most `limit` at a time; results in item order. fn must not throw. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The hub API client of a backend, from its connection and the service token; undefined if none. */
export async function defaultHub(
  b: EnvironmentBackend,
  envName: string,
  getenv: (name: string) => string | undefined,
): Promise<HubClient | undefined> {
  const conn = await connectionFor(b, envName);
  const tokenFile = conn.hubTokenFile ?? getenv("WOD_HUB_TOKEN_FILE");
  if (!tokenFile) return undefined;
  return await HubClient.fromTokenFile(conn.hubUrl.replace(/\/+$/, "").replace(/\/hub$/, ""), tokenFile);
}

/** The delivery channels of one environment, opened once per apply. */
export class Delivery {
  private constructor(
    private readonly cfg: Config,
    private readonly env: Environment,
    private readonly front: FrontendClient | undefined,
    private readonly frontErr: string | undefined,
    private readonly mail: Mailer | undefined,
    private readonly ident: string[],
    private readonly log: (line: string) => void,
  ) {}

  static async open(opts: {
    cfg: Config;
    env: Environment;
    identities?: string[];
    getenv?: (name: string) => string | undefined;
    log: (line: string) => void;
  }): Promise<Delivery> {
    const { env } = opts;
    let front: FrontendClient | undefined;
    let frontErr: string | undefined;
    if (env.frontend) {
      try {
        front = FrontendClient.fromEnv(env.frontend, opts.getenv);
      } catch (err) {
        frontErr = (err as Error).message;
      }
    }
    const wantMail = env.mail?.send_credentials === true;
    const ident = wantMail ? (opts.identities ?? await identitiesFromEnv()) : [];
    const mail = wantMail ? mailer(env.mail!) : undefined;
    return new Delivery(opts.cfg, env, front, frontErr, mail, ident, opts.log);
  }

  close(): void {
    this.mail?.close();
  }

  /** Credentials of a created seat: front end and/or participant email; throws when one fails. */
  async created(seat: Seat, b: EnvironmentBackend, password: string, delivered: string[]): Promise<void> {
    if (this.env.frontend) {
      if (!this.front) throw new WodError(this.frontErr ?? "front end not configured");
      await this.front.created(seat.seat + (b.base_stdid ?? 0), seat.customer, password);
      delivered.push("frontend");
    }
    if (this.mail && seat.email_sealed) {
      if (this.ident.length === 0) {
        throw new WodError(
          "the participant email is sealed and no identity is set (WOD_AGE_IDENTITY or WOD_AGE_IDENTITY_FILE)",
        );
      }
      const to = await unseal(seat.email_sealed, this.ident);
      await this.mail.send(to, await this.credentialsMessage(seat, b, password));
      delivered.push("email");
    }
    if (delivered.length === 0) {
      this.log(`warning: ${seatKey(seat)}: no credential delivery configured (frontend or mail)`);
    }
  }

  private async credentialsMessage(seat: Seat, b: EnvironmentBackend, password: string) {
    const ws = this.cfg.workshops.get(seat.workshop ?? "");
    const duration = ws?.value.duration ?? 2;
    return await renderTemplate("credentials", {
      WORKSHOP: seat.workshop ?? "",
      WORKSHOP_TITLE: ws?.value.title ?? seat.workshop ?? "",
      HUB_URL: await hubUrlFor(b),
      USERNAME: `student${seat.seat}`,
      PASSWORD: password,
      ENTRY: `${seat.workshop ?? ""}/${ws?.value.entry ?? "0-ReadMeFirst.ipynb"}`,
      EXPIRES: new Date(Date.now() + duration * 3_600_000).toISOString().slice(0, 16).replace("T", " "),
    });
  }

  /** The front-end callback of a non-CREATE action, from the seat and the backend's result. */
  callbackOf(seat: Seat, b: EnvironmentBackend, p: SeatPendingAction, r: SeatResult): Callback {
    const c: Callback = { action: p.action, dbStudentId: seat.seat + (b.base_stdid ?? 0) };
    if (seat.customer !== undefined) c.customer = seat.customer;
    if (r.password !== undefined) c.password = r.password;
    if (r.completion !== undefined) c.completion = r.completion;
    if (p.action === "CLEANUP") {
      c.heldForReset = this.cfg.workshops.get(seat.workshop ?? "")?.value.reset === true;
    }
    return c;
  }

  /**
   * The front end hears of every other action, as from the original backend: CLEANUP keeps a reset
   * workshop's student assigned until its RESET; RESET and PURGE free it with its new password.
   * False when there is no front end to tell; throws when the callback fails.
   */
  async report(c: Callback): Promise<boolean> {
    if (!this.front) return false;
    const front = this.front;
    if (c.action === "CLEANUP") {
      await front.cleaned(c.dbStudentId, c.customer, c.password, c.completion, {
        heldForReset: c.heldForReset,
      });
    } else if (c.action === "RESET") {
      await front.reset([{ dbStudentId: c.dbStudentId, password: c.password }]);
    } else if (c.action === "PURGE") await front.purged(c.dbStudentId, c.password);
    else await front.created(c.dbStudentId, c.customer, c.password ?? "");
    return true;
  }
}

/**
 * Starts, through the hub API, the servers of the seats whose last action in this apply was a
 * successful CREATE (a seat created then cleaned up in the same apply gets no server). Does not wait
 * for the servers to be ready; a failed start is logged, not a seat failure: the hub spawns the
 * server when the student logs in.
 */
export async function startServers(
  seats: Seat[],
  steps: Map<string, Step[]>,
  deferred: Map<string, HubClient>,
  log: (line: string) => void,
): Promise<void> {
  const todo = seats.filter((s) => {
    const done = steps.get(seatKey(s)) ?? [];
    return deferred.has(seatKey(s)) && done.length > 0 && done.every((x) => x.ok) &&
      done[done.length - 1].action === "CREATE";
  });
  if (todo.length === 0) return;
  const t0 = performance.now();
  const failures = (await mapLimit(todo, DELIVERY_PARALLEL, async (s) => {
    try {
      await deferred.get(seatKey(s))!.requestServerStart(`student${s.seat}`);
      return 0;
    } catch (err) {
      log(
        `warning: ${seatKey(s)}: hub server not started (the hub starts it at login): ${
          (err as Error).message.split("\n")[0]
        }`,
      );
      return 1;
    }
  })).reduce((a: number, b) => a + b, 0);
  log(
    `hub servers of ${todo.length} new seat(s) started${failures ? ` (${failures} failed)` : ""} in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
}
