// Client of the original front end's REST API (wod-api-db, docs/interop.md): POST /login returns an
// accessToken (a JWT valid 180 s) sent back as `x-access-token`; after CREATE the backend reports
// PUT /student/<dbStudentId> {password} then PUT /customer/<id> {active:"true"}; after CLEANUP
// {completionPercentage}, the student's new password with assigned "false", and {active:"false",
// cleaned:"true"}. Passwords go only into request bodies, never into errors or logs.
import { WodError } from "../common/errors.ts";
import type { EnvironmentFrontend } from "../config/types.gen.ts";

/** Renew the token this long before its 180 s lifetime ends. */
const TOKEN_REUSE_MS = 120_000;

export class FrontendClient {
  private token?: string;
  private tokenAt = 0;

  constructor(
    readonly apiUrl: string,
    private readonly username: string,
    private readonly password: string,
    readonly timeoutMs = 15_000,
  ) {}

  /** From an environment's `frontend` section; credentials from the named environment variables. */
  static fromEnv(fe: EnvironmentFrontend, getenv = (k: string) => Deno.env.get(k)): FrontendClient {
    const userVar = fe.username_env ?? "WOD_FRONTEND_USER";
    const passVar = fe.password_env ?? "WOD_FRONTEND_PASSWORD";
    const user = getenv(userVar);
    const pass = getenv(passVar);
    if (!user || !pass) {
      throw new WodError(
        `Front-end API ${fe.api_url} needs credentials: set ${userVar} and ${passVar} (frontend.username_env / password_env)`,
      );
    }
    return new FrontendClient(fe.api_url, user, pass);
  }

  private url(path: string): string {
    return this.apiUrl.replace(/\/+$/, "") + path;
  }

  private async login(): Promise<string> {
    if (this.token && Date.now() - this.tokenAt < TOKEN_REUSE_MS) return this.token;
    let res: Response;
    try {
      res = await fetch(this.url("/login"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: this.username, password: this.password }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new WodError(`Front-end login failed: POST ${this.url("/login")}: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      throw new WodError(`Front-end login failed: POST ${this.url("/login")} answered ${res.status}`);
    }
    let token: unknown;
    try {
      token = JSON.parse(text).accessToken;
    } catch { /* handled below */ }
    if (typeof token !== "string" || token === "") {
      throw new WodError(`Front-end login failed: POST ${this.url("/login")} returned no accessToken`);
    }
    this.token = token;
    this.tokenAt = Date.now();
    return token;
  }

  /** PUT with the access token; a 401/403 (expired token) logs in again once. */
  async put(path: string, body: Record<string, unknown>): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const token = await this.login();
      let res: Response;
      try {
        res = await fetch(this.url(path), {
          method: "PUT",
          headers: { "content-type": "application/json", "x-access-token": token },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        throw new WodError(`Front-end call failed: PUT ${this.url(path)}: ${(err as Error).message}`);
      }
      await res.body?.cancel();
      if ((res.status === 401 || res.status === 403) && attempt === 0) {
        this.token = undefined;
        continue;
      }
      if (!res.ok) throw new WodError(`Front-end call failed: PUT ${this.url(path)} answered ${res.status}`);
      return;
    }
  }

  /** GET with the access token (the api-db serves GET /workshops without one; sending it is harmless). */
  async getJson(path: string): Promise<unknown> {
    const token = await this.login();
    let res: Response;
    try {
      res = await fetch(this.url(path), {
        headers: { "x-access-token": token },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new WodError(`Front-end call failed: GET ${this.url(path)}: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) throw new WodError(`Front-end call failed: GET ${this.url(path)} answered ${res.status}`);
    try {
      return JSON.parse(text);
    } catch {
      throw new WodError(`Front-end call failed: GET ${this.url(path)} did not return JSON`);
    }
  }

  /** After CREATE: the student's password, then the customer active. */
  async created(dbStudentId: number, customer: string | undefined, password: string): Promise<void> {
    await this.put(`/student/${dbStudentId}`, { password });
    if (customer !== undefined) {
      await this.put(`/customer/${encodeURIComponent(customer)}`, { active: "true" });
    }
  }

  /**
   * After CLEANUP: completion, the student's new password, then the customer inactive and cleaned.
   * The student stays assigned (`assigned: "true"`) while the seat waits for its RESET (a workshop
   * with `reset: true`), so the front end does not give it to the next participant too early;
   * otherwise it is reported free (`assigned: "false"`).
   */
  async cleaned(
    dbStudentId: number,
    customer: string | undefined,
    password: string | undefined,
    completion: number | undefined,
    opts: { heldForReset?: boolean } = {},
  ): Promise<void> {
    const c = customer === undefined ? undefined : `/customer/${encodeURIComponent(customer)}`;
    if (c && completion !== undefined) await this.put(c, { completionPercentage: completion });
    const student: Record<string, unknown> = { assigned: opts.heldForReset ? "true" : "false" };
    if (password) student.password = password;
    await this.put(`/student/${dbStudentId}`, student);
    if (c) await this.put(c, { active: "false", cleaned: "true" });
  }

  /**
   * After RESET of seats: each student free again (with its new password when known). For a whole
   * range of workshop `workshopDbId`, the front end's capacity is set back to the range's size first.
   */
  async reset(
    students: { dbStudentId: number; password?: string }[],
    range?: { workshopDbId: number; capacity: number },
  ): Promise<void> {
    if (range) await this.put(`/workshop/${range.workshopDbId}`, { capacity: range.capacity });
    for (const s of students) {
      const body: Record<string, unknown> = { assigned: "false" };
      if (s.password) body.password = s.password;
      await this.put(`/student/${s.dbStudentId}`, body);
    }
  }

  /** After PURGE: the student free, with the new password (the old one no longer logs in). */
  async purged(dbStudentId: number, password: string | undefined): Promise<void> {
    const body: Record<string, unknown> = { assigned: "false" };
    if (password) body.password = password;
    await this.put(`/student/${dbStudentId}`, body);
  }

  /** The student is in use (an order for it was refused because someone holds it): not to be handed out. */
  async studentHeld(dbStudentId: number): Promise<void> {
    await this.put(`/student/${dbStudentId}`, { assigned: "true" });
  }

  /** The customer's registration is over on our side (its order cannot be carried out). */
  async customerEnded(customer: string): Promise<void> {
    await this.put(`/customer/${encodeURIComponent(customer)}`, { active: "false", cleaned: "true" });
  }

  /** The front end's numeric id of a workshop, by its folder name (GET /workshops, field notebook). */
  async workshopDbId(notebook: string): Promise<number | undefined> {
    const list = await this.getJson("/workshops");
    if (!Array.isArray(list)) return undefined;
    const row = list.find((w) =>
      w && typeof w === "object" && (w as { notebook?: unknown }).notebook === notebook
    );
    const id = (row as { id?: unknown } | undefined)?.id;
    return typeof id === "number" ? id : undefined;
  }
}
