// Reads recorded seats from a checkout holding state/<env>/<backend>/<seat>.json (the working tree
// for `wod plan`, or a store's clone).
import { join } from "node:path";
import type { Seat } from "../config/types.gen.ts";
import { WodError } from "../common/errors.ts";
import { validator } from "../config/schema.ts";

export type SeatRecord = Seat;

export const STATE_DIR = "state";
export const ORDERS_DIR = "orders";
const SEAT_FILE = /^(0|[1-9][0-9]*)\.json$/;
const BACKEND_DIR = /^[a-z][a-z0-9-]{0,31}$/;

export function seatPath(env: string, backend: string, seat: number, prefix = STATE_DIR): string {
  return `${prefix}/${env}/${backend}/${seat}.json`;
}

export function orderPath(env: string, id: string, prefix = STATE_DIR): string {
  return `${prefix}/${env}/${ORDERS_DIR}/${id}.json`;
}

/** Parses and schema-checks one seat file; errors name the file and what was expected. */
export function parseSeat(text: string, file: string, backend?: string, seat?: number): Seat {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new WodError(`Invalid JSON in recorded seat ${file}: ${(err as Error).message}`);
  }
  const v = validator("seat");
  if (!v(value)) {
    const e = v.errors?.[0];
    throw new WodError(
      `Invalid recorded seat ${file}: ${e?.instancePath || "the document"} ${
        e?.message ?? "does not match"
      } (schemas/seat.schema.json)`,
    );
  }
  const s = value as Seat;
  if ((backend !== undefined && s.backend !== backend) || (seat !== undefined && s.seat !== seat)) {
    throw new WodError(
      `Recorded seat ${file} says backend "${s.backend}" seat ${s.seat}; expected backend "${backend}" seat ${seat} from its path`,
    );
  }
  return s;
}

export function sortSeats<T extends { backend: string; seat: number }>(seats: T[]): T[] {
  return seats.sort((a, b) => a.backend < b.backend ? -1 : a.backend > b.backend ? 1 : a.seat - b.seat);
}

/** All recorded seats of `env` under `dir`/state/, sorted by backend then seat. Missing dir: []. */
export async function readRecordedSeats(dir: string, env: string, prefix = STATE_DIR): Promise<SeatRecord[]> {
  const envDir = join(dir, prefix, env);
  const out: Seat[] = [];
  let backends: Deno.DirEntry[];
  try {
    backends = await Array.fromAsync(Deno.readDir(envDir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  for (const b of backends) {
    if (!b.isDirectory || b.name === ORDERS_DIR || !BACKEND_DIR.test(b.name)) continue;
    for await (const f of Deno.readDir(join(envDir, b.name))) {
      const m = SEAT_FILE.exec(f.name);
      if (!f.isFile || !m) continue;
      const file = join(prefix, env, b.name, f.name);
      out.push(parseSeat(await Deno.readTextFile(join(envDir, b.name, f.name)), file, b.name, Number(m[1])));
    }
  }
  return sortSeats(out);
}
