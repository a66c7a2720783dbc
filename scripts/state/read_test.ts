import { assertEquals, assertRejects } from "../common/assert.ts";
import { readRecordedSeats } from "./read.ts";

Deno.test("readRecordedSeats reads state/<env>/<backend>/<seat>.json sorted, skips the ledger, names a bad file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(await readRecordedSeats(dir, "local"), []);
    await Deno.mkdir(`${dir}/state/local/jup2`, { recursive: true });
    await Deno.mkdir(`${dir}/state/local/jup1`, { recursive: true });
    await Deno.mkdir(`${dir}/state/local/orders`, { recursive: true });
    const seat = (backend: string, n: number) =>
      JSON.stringify({ backend, seat: n, status: "free", orders: [] });
    await Deno.writeTextFile(`${dir}/state/local/jup2/3.json`, seat("jup2", 3));
    await Deno.writeTextFile(`${dir}/state/local/jup1/10.json`, seat("jup1", 10));
    await Deno.writeTextFile(`${dir}/state/local/jup1/9.json`, seat("jup1", 9));
    await Deno.writeTextFile(`${dir}/state/local/orders/x.json`, "{}");
    const seats = await readRecordedSeats(dir, "local");
    assertEquals(seats.map((s) => `${s.backend}/${s.seat}`), ["jup1/9", "jup1/10", "jup2/3"]);
    await Deno.writeTextFile(
      `${dir}/state/local/jup1/11.json`,
      JSON.stringify({ backend: "jup1", seat: 11, status: "busy", orders: [] }),
    );
    await assertRejects(
      () => readRecordedSeats(dir, "local"),
      /Invalid recorded seat state\/local\/jup1\/11.json: \/status/,
    );
    await Deno.writeTextFile(`${dir}/state/local/jup1/11.json`, seat("jup1", 12));
    await assertRejects(
      () => readRecordedSeats(dir, "local"),
      /says backend "jup1" seat 12; expected backend "jup1" seat 11/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
