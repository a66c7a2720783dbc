// A small client for a user's Jupyter server (notebook 6.x / jupyter_server): the REST API (status,
// kernelspecs, contents, sessions, interrupt) with a user API token, and a kernel's websocket speaking
// the Jupyter messaging protocol (execute_request -> iopub status/stream/error/execute_result/
// display_data, shell execute_reply). The token travels in the Authorization header only, never in a URL.
import { WodError } from "../common/errors.ts";
import { hubFetch, hubWebSocket } from "../backend/hub.ts";

export interface KernelSpecs {
  default: string;
  kernelspecs: Record<string, { name: string; spec: { display_name: string; language: string } }>;
}

export interface ContentsEntry {
  name: string;
  path: string;
  type: "file" | "directory" | "notebook";
  content?: unknown;
}

export interface SessionModel {
  id: string;
  path: string;
  kernel: { id: string; name: string };
}

/** One output of a cell, as stored in nbformat 4. */
export type CellOutput =
  | { output_type: "stream"; name: string; text: string }
  | { output_type: "error"; ename: string; evalue: string; traceback: string[] }
  | {
    output_type: "execute_result" | "display_data";
    data: Record<string, unknown>;
    metadata?: unknown;
    execution_count?: number | null;
  };

export interface ExecResult {
  /** ok, error (the cell raised), timeout (interrupted after the timeout), lost (no reply at all). */
  status: "ok" | "error" | "timeout" | "lost";
  executionCount: number | null;
  outputs: CellOutput[];
  error?: { ename: string; evalue: string; traceback: string[] };
  ms: number;
}

export class JupyterApiError extends WodError {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "JupyterApiError";
  }
}

/** The REST API of one user's server, e.g. http://hub/user/student7, with that user's token. */
export class JupyterServer {
  readonly base: string;
  constructor(base: string, private readonly token: string) {
    this.base = base.replace(/\/+$/, "");
  }

  get authHeader(): Record<string, string> {
    return { Authorization: `token ${this.token}` };
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await hubFetch(`${this.base}/api${path}`, {
      method,
      headers: {
        ...this.authHeader,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch { /* keep the text */ }
    return { status: res.status, body: parsed as T };
  }

  private fail(what: string, status: number, body: unknown): never {
    const msg = typeof body === "object" && body && "message" in body ? String(body.message) : "";
    throw new JupyterApiError(
      status,
      `Jupyter server API ${what} at ${this.base} failed: HTTP ${status} ${msg}`.trim(),
    );
  }

  /** Wait until the server answers /api/status (it may still be spawning). */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 0;
    while (Date.now() < deadline) {
      last = (await this.request("GET", "/status").catch(() => ({ status: 0 }))).status;
      if (last === 200) return;
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new WodError(
      `The Jupyter server at ${this.base} did not answer within ${timeoutMs} ms (last HTTP ${last}): ` +
        "check the hub log on the backend",
    );
  }

  async kernelspecs(): Promise<KernelSpecs> {
    const r = await this.request<KernelSpecs>("GET", "/kernelspecs");
    if (r.status !== 200) this.fail("GET /api/kernelspecs", r.status, r.body);
    return r.body;
  }

  async contents(path: string, content = true): Promise<ContentsEntry> {
    const p = path.split("/").filter(Boolean).map(encodeURIComponent).join("/");
    const r = await this.request<ContentsEntry>("GET", `/contents/${p}?content=${content ? 1 : 0}`);
    if (r.status !== 200) this.fail(`GET /api/contents/${path}`, r.status, r.body);
    return r.body;
  }

  /** Every notebook under `dir` (recursively, hidden entries left out), as paths. */
  async notebooks(dir = ""): Promise<string[]> {
    const model = await this.contents(dir);
    const out: string[] = [];
    for (const e of (model.content as ContentsEntry[]) ?? []) {
      if (e.name.startsWith(".")) continue;
      if (e.type === "directory") out.push(...await this.notebooks(e.path));
      else if (e.type === "notebook" || e.name.endsWith(".ipynb")) out.push(e.path);
    }
    return out;
  }

  /** A notebook session (what the notebook UI opens): the kernel starts in the notebook's folder. */
  async createSession(path: string, kernel: string): Promise<SessionModel> {
    const r = await this.request<SessionModel>("POST", "/sessions", {
      path,
      name: path.split("/").at(-1),
      type: "notebook",
      kernel: { name: kernel },
    });
    if (r.status !== 201 && r.status !== 200) this.fail(`POST /api/sessions (${path})`, r.status, r.body);
    return r.body;
  }

  async deleteSession(id: string): Promise<void> {
    await this.request("DELETE", `/sessions/${encodeURIComponent(id)}`).catch(() => {});
  }

  async interrupt(kernelId: string): Promise<void> {
    await this.request("POST", `/kernels/${encodeURIComponent(kernelId)}/interrupt`).catch(() => {});
  }

  /** The kernel's websocket, once the kernel answers (within `timeoutMs`, default 30 s). */
  async connect(kernelId: string, timeoutMs?: number): Promise<KernelChannel> {
    return await KernelChannel.open(this, kernelId, timeoutMs);
  }
}

interface Message {
  header: { msg_id: string; msg_type: string };
  parent_header: { msg_id?: string };
  content: Record<string, unknown>;
  channel?: string;
}

type Waiter = (m: Message) => void;

/** The websocket of one kernel (`/api/kernels/<id>/channels`). */
export class KernelChannel {
  private readonly session = crypto.randomUUID();
  private readonly waiters = new Map<string, Waiter>();
  private closedReason: string | undefined;
  private onClose: (() => void)[] = [];

  private constructor(
    private readonly server: JupyterServer,
    readonly kernelId: string,
    private ws: WebSocket,
  ) {}

  static async open(server: JupyterServer, kernelId: string, timeoutMs = 30_000): Promise<KernelChannel> {
    const url = new URL(`${server.base}/api/kernels/${encodeURIComponent(kernelId)}/channels`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("session_id", crypto.randomUUID());
    // Deno's WebSocket accepts headers: the token stays out of the URL (and of proxy logs).
    const ws = hubWebSocket(url.href, server.authHeader);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new WodError(`Kernel websocket ${url.pathname} did not open in time`)),
        timeoutMs,
      );
      ws.onopen = () => {
        clearTimeout(t);
        resolve();
      };
      ws.onerror = (e) => {
        clearTimeout(t);
        reject(
          new WodError(`Kernel websocket ${url.pathname} failed: ${(e as ErrorEvent).message ?? "error"}`),
        );
      };
    });
    const ch = new KernelChannel(server, kernelId, ws);
    ws.onmessage = (e) => ch.dispatch(e.data);
    ws.onclose = () => {
      ch.closedReason ??= "the kernel websocket closed";
      for (const f of ch.onClose) f();
    };
    ws.onerror = () => {};
    // Wait until the kernel answers (it may still be starting).
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const reply = await ch.request("kernel_info_request", {}, "shell", 3_000);
      if (reply) return ch;
    }
    ch.close();
    throw new WodError(
      `Kernel ${kernelId} at ${server.base} did not answer kernel_info within ${timeoutMs} ms`,
    );
  }

  private dispatch(data: unknown): void {
    if (typeof data !== "string") return; // binary frames carry buffers we do not use
    let m: Message;
    try {
      m = JSON.parse(data) as Message;
    } catch {
      return;
    }
    const parent = m.parent_header?.msg_id;
    if (parent) this.waiters.get(parent)?.(m);
  }

  private send(msgType: string, content: Record<string, unknown>, channel: string): string {
    const msgId = crypto.randomUUID();
    this.ws.send(JSON.stringify({
      header: {
        msg_id: msgId,
        username: "wod",
        session: this.session,
        msg_type: msgType,
        version: "5.3",
        date: new Date().toISOString(),
      },
      parent_header: {},
      metadata: {},
      content,
      channel,
      buffers: [],
    }));
    return msgId;
  }

  private request(msgType: string, content: Record<string, unknown>, channel: string, timeoutMs: number) {
    return new Promise<Message | undefined>((resolve) => {
      const id = this.send(msgType, content, channel);
      const t = setTimeout(() => {
        this.waiters.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(id, (m) => {
        if (m.channel === channel && m.header.msg_type.endsWith("_reply")) {
          clearTimeout(t);
          this.waiters.delete(id);
          resolve(m);
        }
      });
    });
  }

  /**
   * Run `code`. Finishes when the kernel has sent both execute_reply and status idle for it. After
   * `timeoutMs` the kernel is interrupted (the KeyboardInterrupt traceback then says where the cell
   * hung) and given `graceMs` more; without any answer the result is "lost".
   */
  execute(code: string, timeoutMs: number, graceMs = 10_000): Promise<ExecResult> {
    const started = performance.now();
    const outputs: CellOutput[] = [];
    let error: ExecResult["error"];
    let executionCount: number | null = null;
    let replied = false;
    let idle = false;
    let timedOut = false;
    return new Promise<ExecResult>((resolve) => {
      let msgId = "";
      const timers: ReturnType<typeof setTimeout>[] = [];
      const finish = (status: ExecResult["status"]) => {
        for (const t of timers) clearTimeout(t);
        this.waiters.delete(msgId);
        resolve({ status, executionCount, outputs, error, ms: performance.now() - started });
      };
      const onMessage = (m: Message) => {
        const c = m.content;
        switch (m.header.msg_type) {
          case "stream": {
            const last = outputs.at(-1);
            if (last?.output_type === "stream" && last.name === c.name) last.text += String(c.text);
            else outputs.push({ output_type: "stream", name: String(c.name), text: String(c.text) });
            break;
          }
          case "execute_result":
          case "display_data":
            outputs.push({
              output_type: m.header.msg_type,
              data: c.data as Record<string, unknown>,
              ...(m.header.msg_type === "execute_result"
                ? { execution_count: c.execution_count as number }
                : {}),
            });
            break;
          case "error":
            error = {
              ename: String(c.ename),
              evalue: String(c.evalue),
              traceback: (c.traceback as string[]) ?? [],
            };
            outputs.push({ output_type: "error", ...error });
            break;
          case "execute_input":
            executionCount = (c.execution_count as number) ?? executionCount;
            break;
          case "clear_output":
            outputs.length = 0;
            break;
          case "execute_reply":
            replied = true;
            executionCount = (c.execution_count as number) ?? executionCount;
            if (c.status === "error" && !error) {
              error = {
                ename: String(c.ename ?? "Error"),
                evalue: String(c.evalue ?? ""),
                traceback: (c.traceback as string[]) ?? [],
              };
            }
            break;
          case "status":
            if (c.execution_state === "idle") idle = true;
            break;
        }
        if (replied && idle) finish(timedOut ? "timeout" : error ? "error" : "ok");
      };
      msgId = this.send("execute_request", {
        code,
        silent: false,
        store_history: true,
        user_expressions: {},
        allow_stdin: false,
        stop_on_error: false,
      }, "shell");
      this.waiters.set(msgId, onMessage);
      if (this.closedReason) return finish("lost");
      this.onClose.push(() => finish("lost"));
      timers.push(setTimeout(() => {
        timedOut = true;
        this.server.interrupt(this.kernelId);
        timers.push(setTimeout(() => finish("lost"), graceMs));
      }, timeoutMs));
    });
  }

  close(): void {
    this.closedReason ??= "closed by wod";
    try {
      this.ws.close();
    } catch { /* already closed */ }
  }
}
