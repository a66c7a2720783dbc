// The one GitHub client of the project: Octokit with the retry plugin (transient 5xx) and the throttling
// plugin (primary and secondary rate limits, honouring retry-after / x-ratelimit-reset, and writes spaced
// as GitHub asks). The state store, the order dispatch and the workflows' API calls all build theirs here.
import { Octokit } from "@octokit/rest";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";

const ThrottledOctokit = Octokit.plugin(retry, throttling);
export type GithubClient = InstanceType<typeof ThrottledOctokit>;

/** A write limiter with the shape plugin-throttling expects of a Bottleneck group. */
function intervalGroup(ms: number) {
  let next = 0;
  const limiter = {
    schedule: async <T>(_opts: unknown, fn: () => Promise<T>): Promise<T> => {
      const now = Date.now();
      const wait = Math.max(0, next - now);
      next = Math.max(now, next) + ms;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      return await fn();
    },
  };
  return { key: () => limiter };
}

/** An Octokit with retry + throttling configured the way the project uses it. */
export function githubClient(opts: {
  baseUrl: string;
  token?: string;
  /** Sent as User-Agent (default "wod"). */
  userAgent?: string;
  writeIntervalMs?: number;
  rateLimitRetries?: number;
  retryAfterBaseMs?: number;
  log?: (line: string) => void;
}): GithubClient {
  const retries = opts.rateLimitRetries ?? 3;
  const log = opts.log ?? ((l: string) => console.error(l));
  const onLimit =
    (kind: string) =>
    (retryAfter: number, options: { method: string; url: string }, _o: unknown, count: number) => {
      if (count < retries) {
        log(`GitHub ${kind} rate limit on ${options.method} ${options.url}: retrying after ${retryAfter} s`);
        return true;
      }
      log(`GitHub ${kind} rate limit on ${options.method} ${options.url}: giving up after ${count} retries`);
      return false;
    };
  return new ThrottledOctokit({
    baseUrl: opts.baseUrl.replace(/\/$/, ""),
    auth: opts.token,
    userAgent: opts.userAgent ?? "wod",
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    retry: { doNotRetry: [400, 401, 403, 404, 409, 410, 422, 429, 451] },
    throttle: {
      onRateLimit: onLimit("primary"),
      onSecondaryRateLimit: onLimit("secondary"),
      retryAfterBaseValue: opts.retryAfterBaseMs ?? 1000,
      fallbackSecondaryRateRetryAfter: 60,
      // deno-lint-ignore no-explicit-any
      write: intervalGroup(opts.writeIntervalMs ?? 1000) as any,
    },
  });
}
