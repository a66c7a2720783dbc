// Lints beyond the schema: ranges, overlaps, capacity, references. (Extended by the model issue.)
import type { Config, Diagnostic } from "./load.ts";

export function lintConfig(cfg: Config): Promise<Diagnostic[]> {
  const out: Diagnostic[] = [];
  for (const env of cfg.environments.values()) {
    env.value.backends.forEach((b, bi) => {
      const [pf, pl] = b.students;
      for (const [ws, [first, last]] of Object.entries(b.ranges ?? {})) {
        const at = env.source(["backends", bi, "ranges", ws]);
        if (!cfg.workshops.has(ws)) {
          out.push({
            ...at,
            message: `Unknown workshop "${ws}" in the ranges of backend "${b.name}"`,
            severity: "error",
          });
        }
        if (first > last || first < pf || last > pl) {
          out.push({
            ...at,
            message:
              `Range [${first}, ${last}] of "${ws}" is outside the student pool [${pf}, ${pl}] of backend "${b.name}"`,
            severity: "error",
          });
        }
      }
    });
  }
  return Promise.resolve(out);
}
