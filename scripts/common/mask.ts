// Mask a generated secret in GitHub Actions logs: `::add-mask::` for each line of the value, printed
// before the value could appear anywhere (the runner hides the command line itself). Outside
// Actions (GITHUB_ACTIONS != "true") it prints nothing. Workflows must not copy lines starting with
// "::" into job summaries (ours filter them out).
export function maskLines(value: string): string[] {
  return value.split(/\r?\n/).filter((l) => l.trim() !== "").map((l) => `::add-mask::${l}`);
}

export function maskForActions(
  value: string,
  opts: { env?: string; write?: (line: string) => void } = {},
): void {
  const env = opts.env ?? Deno.env.get("GITHUB_ACTIONS");
  if (env !== "true") return;
  const write = opts.write ?? ((l: string) => console.log(l));
  for (const line of maskLines(value)) write(line);
}
