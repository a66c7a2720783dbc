// One error printer for every command: the message, then the cause chain, on stderr.

/** A user-facing error whose message is complete on its own (no stack trace printed). */
export class WodError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WodError";
  }
}

/** Bad command-line usage. */
export class UsageError extends WodError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

export function formatError(err: unknown): string {
  const lines: string[] = [];
  let cur: unknown = err;
  let depth = 0;
  while (cur !== undefined && cur !== null && depth < 10) {
    if (cur instanceof Error) {
      const text = cur instanceof WodError || depth > 0 ? cur.message : (cur.stack ?? cur.message);
      lines.push(depth === 0 ? `error: ${text}` : `  caused by: ${text}`);
      cur = cur.cause;
    } else {
      lines.push(depth === 0 ? `error: ${String(cur)}` : `  caused by: ${String(cur)}`);
      cur = undefined;
    }
    depth++;
  }
  return lines.join("\n");
}

export function printError(err: unknown): void {
  console.error(formatError(err));
}

/** A script's entry point: exits with `main(Deno.args)`, or prints the error and exits 1. */
export async function runMain(main: (args: string[]) => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    printError(err);
    Deno.exit(1);
  }
}
