// The catalog for front ends (docs/cli.md): {"workshops":[{"id","title","duration","active","seats":[{"backend","first","last"}]}]}
import { type Config, requireEnvironment } from "./load.ts";

export interface CatalogSeats {
  backend: string;
  first: number;
  last: number;
}

export interface CatalogWorkshop {
  id: string;
  title: string;
  duration: number;
  active: boolean;
  seats: CatalogSeats[];
}

export interface Catalog {
  workshops: CatalogWorkshop[];
}

/** Every workshop (sorted by id) with its seat ranges on the backends of environment `env`. */
export function buildCatalog(cfg: Config, env: string): Catalog {
  const e = requireEnvironment(cfg, env);
  const seats = new Map<string, CatalogSeats[]>();
  for (const b of e.value.backends) {
    for (const [ws, [first, last]] of Object.entries(b.ranges ?? {})) {
      const list = seats.get(ws) ?? [];
      list.push({ backend: b.name, first, last });
      seats.set(ws, list);
    }
  }
  const workshops = [...cfg.workshops.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((
    w,
  ) => ({
    id: w.id,
    title: w.value.title,
    duration: w.value.duration,
    active: w.value.active ?? true,
    seats: seats.get(w.id) ?? [],
  }));
  return { workshops };
}
