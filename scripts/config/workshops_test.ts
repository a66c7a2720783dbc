// The repository's example workshops, rendered with real Jinja2 (python3-jinja2, the engine Ansible's
// template module uses) in both modes, must give valid notebooks; their Python code cells must run.
import { assertEquals } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { loadConfig } from "./load.ts";
import { REPO_ROOT } from "./testing.ts";

const RENDER = `
import json, sys, glob, os, jinja2
req = json.load(sys.stdin)
env = jinja2.Environment(undefined=jinja2.StrictUndefined)
out = []
for path in sorted(glob.glob(os.path.join(req["dir"], "*.ipynb"))):
    text = open(path, encoding="utf-8").read()
    for mode in ("WKSHP", "CHLG"):
        rendered = env.from_string(text).render(dict(req["vars"], MODEWS=mode))
        nb = json.loads(rendered)
        assert nb["cells"], path
        if req["execute"] and mode == "WKSHP":
            scope = dict()
            for cell in nb["cells"]:
                if cell["cell_type"] == "code":
                    exec("".join(cell["source"]), scope)
    out.append(os.path.basename(path))
print(json.dumps(out))
`;

Deno.test("example workshops render with Jinja2 in WKSHP and CHLG modes and their code cells run", async () => {
  const cfg = await loadConfig(REPO_ROOT);
  const local = cfg.environments.get("local")!;
  const vars = { ...local.value.vars, STDID: 7, WODBEEXTFQDN: "localhost", PASSSTU: "x", HTTPPORT: 8007 };
  const ids = ["WKSHP-Shell101", "WKSHP-PyBasics101", "WKSHP-REST101"];
  for (const id of ids) {
    const w = cfg.workshops.get(id);
    assertEquals(w !== undefined, true, `${id} is missing`);
    const res = await exec("python3", ["-c", RENDER], {
      stdin: JSON.stringify({
        dir: w!.dir,
        vars: { ...vars, ...w!.value.vars },
        execute: id !== "WKSHP-Shell101",
      }),
    });
    const rendered = JSON.parse(res.stdout.trim().split("\n").pop()!) as string[];
    assertEquals(rendered[0], "0-ReadMeFirst.ipynb", `${id}: the entry notebook comes first`);
    assertEquals(rendered.length >= 2, true, `${id} has real notebooks`);
  }
});
