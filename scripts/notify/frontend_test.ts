// The front-end client reports every seat action the way the original backend did, against the
// api-db stand-in (scripts/testing/apidb_sim.ts): a reset workshop's student stays assigned after
// CLEANUP until its RESET, RESET and PURGE free the student (with the new password), and a RESET of a
// range sets the workshop's capacity back.
import { assertEquals } from "../common/assert.ts";
import { ApiDbSim } from "../testing/apidb_sim.ts";
import { FrontendClient } from "./frontend.ts";

async function withSim(fn: (sim: ApiDbSim, fe: FrontendClient) => Promise<void>) {
  const sim = new ApiDbSim({ orderPort: 9, woduser: "wodadmin", sender: "api@front.test" });
  sim.addLocation({ name: "b1.test", basestdid: 100, proto: "https", port: "443" }, [1, 10]);
  sim.addWorkshop({
    name: "Reset 101",
    notebook: "WKSHP-Reset101",
    capacity: 0,
    range: [1, 4],
    reset: true,
    location: "b1.test",
    duration: 2,
  });
  await sim.start();
  try {
    await fn(sim, new FrontendClient(`${sim.url}/api`, sim.username, sim.password));
  } finally {
    await sim.close();
  }
}

Deno.test("front-end client: CLEANUP of a reset workshop keeps the student assigned until its RESET", async () => {
  await withSim(async (sim, fe) => {
    sim.students.get(102)!.assigned = true;
    await fe.cleaned(102, undefined, "new-pw-1", 40, { heldForReset: true });
    assertEquals(sim.students.get(102)!.assigned, true);
    assertEquals(sim.students.get(102)!.password, "new-pw-1");
    await fe.reset([{ dbStudentId: 102, password: "new-pw-2" }]);
    assertEquals(sim.students.get(102)!.assigned, false);
    assertEquals(sim.students.get(102)!.password, "new-pw-2");
  });
});

Deno.test("front-end client: PURGE frees the student with its new password; a range RESET restores capacity", async () => {
  await withSim(async (sim, fe) => {
    sim.students.get(103)!.assigned = true;
    await fe.purged(103, "purged-pw");
    assertEquals([sim.students.get(103)!.assigned, sim.students.get(103)!.password], [false, "purged-pw"]);
    for (const id of [101, 102, 103, 104]) sim.students.get(id)!.assigned = true;
    const wid = await fe.workshopDbId("WKSHP-Reset101");
    assertEquals(wid, 1);
    await fe.reset([101, 102, 103, 104].map((dbStudentId) => ({ dbStudentId })), {
      workshopDbId: wid!,
      capacity: 4,
    });
    assertEquals(sim.workshops[0].capacity, 4);
    assertEquals([101, 102, 103, 104].map((id) => sim.students.get(id)!.assigned), [
      false,
      false,
      false,
      false,
    ]);
    assertEquals(await fe.workshopDbId("WKSHP-Nope"), undefined);
  });
});
