// Bench: durable order acceptance of `wod listen` vs a local Postfix (the original transport: Postfix
// accepting into its queue, delivering to a maildir). Postfix's smtp-source sends N orders over C
// connections (messages back to back on each connection) to each; a 250 from either server means the
// order is on disk (our spool is fsynced, Postfix's queue file is fsynced). Paired rounds (alternating
// which server goes first), the median of the per-round ratios. The listener runs with its default
// limits (per-address caps and rates, error limits, descriptor budget): smtp-source's 20 connections
// from 127.0.0.1 are inside them.
//
// Postfix runs as a private instance: its own config directory (`postfix -c DIR`), queue, data and
// maildir in a temp directory, listening on a free loopback port; the system's mail setup is not used
// or changed. Needs root (Postfix drops privileges to its "postfix" user) and the postfix package.
//
// Env: BENCH_ORDERS (5000), BENCH_CONNECTIONS (20), BENCH_ROUNDS (3).
import { join } from "node:path";
import { exec } from "../scripts/common/exec.ts";
import { freePort } from "../scripts/common/net.ts";
import { makeRoot, spawnListen } from "../scripts/mail/testing.ts";

const ORDERS = Number(Deno.env.get("BENCH_ORDERS") ?? 5000);
const CONNS = Number(Deno.env.get("BENCH_CONNECTIONS") ?? 20);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function need(cmd: string): Promise<void> {
  const r = await exec("sh", ["-c", 'command -v "$1"', "sh", cmd], { allowFailure: true });
  if (r.code !== 0) {
    throw new Error(
      `${cmd} is not installed: the listener bench needs the postfix Debian package (.ci/apt-packages.txt)`,
    );
  }
}

const MASTER_CF = (port: number) =>
  `127.0.0.1:${port} inet n - n - - smtpd
pickup    unix  n - n 60    1 pickup
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
proxywrite unix - - n -     1 proxymap
smtp      unix  - - n -     - smtp
relay     unix  - - n -     - smtp
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
local     unix  - n n -     - local
virtual   unix  - n n -     - virtual
lmtp      unix  - - n -     - lmtp
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
`;

/** A private Postfix on a loopback port delivering b1.test to a maildir; returns its port and stop(). */
async function startPostfix(
  dir: string,
): Promise<{ port: number; maildir: string; stop: () => Promise<void> }> {
  const port = freePort();
  const conf = join(dir, "conf");
  await Deno.chmod(dir, 0o755); // Postfix's own users must reach the queue, data and mail directories
  for (const d of ["conf", "queue", "data", "mail"]) await Deno.mkdir(join(dir, d), { recursive: true });
  const uid = (await exec("id", ["-u", "postfix"])).stdout.trim();
  const nobody = "65534";
  await exec("chown", [uid, join(dir, "data")]);
  await exec("chown", [`${nobody}:${nobody}`, join(dir, "mail")]);
  await Deno.writeTextFile(
    join(conf, "main.cf"),
    `compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = bench-postfix.localdomain
mydomain = localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = b1.test
virtual_mailbox_base = ${dir}/mail
virtual_mailbox_maps = static:maildir/
virtual_uid_maps = static:${nobody}
virtual_gid_maps = static:${nobody}
virtual_minimum_uid = 100
maillog_file_prefixes = ${dir}
maillog_file = ${dir}/maillog
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = no
`,
  );
  await Deno.writeTextFile(join(conf, "master.cf"), MASTER_CF(port));
  const stop = async () => {
    await exec("postfix", ["-c", conf, "stop"], { allowFailure: true });
  };
  const r = await exec("postfix", ["-c", conf, "start"], { allowFailure: true });
  if (r.code !== 0) {
    const log = await Deno.readTextFile(join(dir, "maillog")).catch(() => "");
    throw new Error(
      `Private Postfix did not start (postfix -c ${conf} start, exit ${r.code}):\n${log.slice(-2000)}`,
    );
  }
  // Wait until smtpd accepts connections.
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { port, maildir: join(dir, "mail", "maildir"), stop };
    } catch {
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  await stop();
  throw new Error(`Private Postfix is not listening on 127.0.0.1:${port}`);
}

async function startListener(
  root: string,
): Promise<{ port: number; healthPort: number; stop: () => Promise<void> }> {
  const { proc, port, healthPort } = await spawnListen(
    root,
    ["--health", "127.0.0.1:0", "--spool", join(root, "spool"), "--record-to", join(root, "sink")],
    { stderr: "inherit" },
  );
  return {
    port,
    healthPort: healthPort!,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.status;
    },
  };
}

async function source(port: number, msgFile: string): Promise<number> {
  const t0 = performance.now();
  await exec("smtp-source", [
    "-s",
    String(CONNS),
    "-m",
    String(ORDERS),
    "-d",
    "-f",
    "api@front.test",
    "-t",
    "wodadmin@b1.test",
    "-M",
    "bench.test",
    "-F",
    msgFile,
    `127.0.0.1:${port}`,
  ]);
  return ORDERS / ((performance.now() - t0) / 1000);
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  try {
    for await (const _ of Deno.readDir(dir)) n++;
  } catch {
    return 0;
  }
  return n;
}

if (import.meta.main) {
  if (Deno.uid() !== 0) throw new Error("The listener bench runs a private Postfix instance and needs root");
  await need("smtp-source");
  await need("postfix");
  const root = await makeRoot();
  const pfDir = await Deno.makeTempDir({ prefix: "wod-bench-postfix-" });
  let listener: Awaited<ReturnType<typeof startListener>> | undefined;
  let postfix: Awaited<ReturnType<typeof startPostfix>> | undefined;
  try {
    const msgFile = join(root, "order.eml");
    await Deno.writeTextFile(msgFile, "Subject: CREATE 5 4242 bench@example.com\n\nWKSHP-Test\n");
    listener = await startListener(root);
    postfix = await startPostfix(pfDir);
    const ours: number[] = [];
    const theirs: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Paired rounds, alternating who goes first: the machine's load drifts (other jobs), and a ratio
      // of two runs made back to back is steadier than a ratio of medians taken far apart.
      if (r % 2 === 0) {
        ours.push(await source(listener.port, msgFile));
        theirs.push(await source(postfix.port, msgFile));
      } else {
        theirs.push(await source(postfix.port, msgFile));
        ours.push(await source(listener.port, msgFile));
      }
      ratios.push(ours[r] / theirs[r]);
      console.error(
        `round ${r + 1}: listener ${ours[r].toFixed(0)}/s, postfix ${theirs[r].toFixed(0)}/s, ratio ${
          ratios[r].toFixed(2)
        }`,
      );
    }
    // Everything accepted also reached its destination (spool drained / maildir delivered).
    const total = ORDERS * ROUNDS;
    const t0 = performance.now();
    let health: Record<string, number> = {};
    while (performance.now() - t0 < 120_000) {
      health = await (await fetch(`http://127.0.0.1:${listener.healthPort}/health`)).json();
      if (health.accepted === total && health.spool_depth === 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    while (performance.now() - t0 < 120_000 && (await countFiles(join(postfix.maildir, "new"))) < total) {
      await new Promise((res) => setTimeout(res, 100));
    }
    const delivered = await countFiles(join(postfix.maildir, "new"));
    const lo = median(ours);
    const pf = median(theirs);
    console.log(`listener_orders_per_s: ${lo.toFixed(0)} orders/s`);
    console.log(`postfix_orders_per_s: ${pf.toFixed(0)} orders/s`);
    console.log(`listener_vs_postfix: ${median(ratios).toFixed(2)} ratio (median of paired rounds)`);
    console.log(`listener_vs_postfix_of_medians: ${(lo / pf).toFixed(2)} ratio`);
    console.log(
      `listener_accepted_total: ${health.accepted} orders (spool depth after drain: ${health.spool_depth})`,
    );
    console.log(`postfix_delivered_total: ${delivered} messages`);
    if (health.accepted !== total || health.spool_depth !== 0) {
      throw new Error(
        `The listener accepted ${health.accepted}/${total} or did not drain (depth ${health.spool_depth})`,
      );
    }
  } finally {
    await listener?.stop();
    await postfix?.stop();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(pfDir, { recursive: true }).catch(() => {});
  }
}
