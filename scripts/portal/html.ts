// The portal's pages: plain server-rendered HTML that works without scripts (one small script only
// refreshes the status page), one stylesheet, no inline script or style (the Content-Security-Policy
// forbids them). Accessibility: a label for every field, errors tied to their field
// (aria-describedby, aria-invalid) and summarised in an alert, visible focus, a skip link, contrast
// above 7:1 for text, a layout that fits a phone.

export function esc(v: unknown): string {
  return String(v ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

export const CSS = `*{box-sizing:border-box}
body{margin:0;font:1.05rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;background:#fff}
a{color:#0645ad}a:focus,button:focus,input:focus,select:focus{outline:3px solid #b35900;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px}
header,main,footer{max-width:48rem;margin:0 auto;padding:0 1rem}
header{border-bottom:1px solid #555;padding-top:.5rem}
h1{font-size:1.6rem}h2{font-size:1.3rem}
.card{border:1px solid #555;border-radius:6px;padding:.75rem 1rem;margin:1rem 0}
.meta{color:#333}
label{display:block;font-weight:600;margin-top:1rem}
input[type=text],input[type=email],input[type=password]{width:100%;max-width:30rem;font:inherit;padding:.5rem;border:2px solid #333;border-radius:4px}
input[aria-invalid=true]{border-color:#a00}
.check{display:flex;gap:.5rem;align-items:flex-start;font-weight:400}.check input{width:1.4rem;height:1.4rem}
.err{color:#a00;font-weight:600;margin:.25rem 0 0}
.alert{border:3px solid #a00;padding:.5rem 1rem;margin:1rem 0}
.ok{border:3px solid #060;padding:.5rem 1rem;margin:1rem 0}
button{font:inherit;padding:.6rem 1.2rem;margin-top:1rem;border:2px solid #0b3d91;background:#0b3d91;color:#fff;border-radius:4px;cursor:pointer}
button.danger{background:#8b0000;border-color:#8b0000}
.hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}
table{border-collapse:collapse;width:100%;font-size:.95rem}th,td{border:1px solid #555;padding:.25rem .4rem;text-align:left}
.status{font-size:1.3rem;font-weight:700}
@media (max-width:30rem){body{font-size:1rem}th,td{font-size:.85rem}}
`;

/** Progressive enhancement of the status page: refreshes the status block every 5 s. */
export const STATUS_JS = `(() => {
  const box = document.getElementById("live");
  if (!box || !box.dataset.src) return;
  const tick = async () => {
    try {
      const r = await fetch(box.dataset.src, { headers: { accept: "text/html" }, credentials: "same-origin" });
      if (r.ok) {
        const html = await r.text();
        if (html !== box.innerHTML) box.innerHTML = html;
      }
    } catch (_) { /* offline: try again */ }
    if (box.dataset.final !== "1" && !box.querySelector("[data-final]")) setTimeout(tick, 5000);
  };
  setTimeout(tick, 5000);
})();
`;

export function layout(title: string, body: string, opts: { brand?: string; script?: string } = {}): string {
  const brand = opts.brand ?? "Workshops-on-Demand";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} - ${esc(brand)}</title>
<link rel="stylesheet" href="/static/portal.css">
${opts.script ? `<script src="${esc(opts.script)}" defer></script>` : ""}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><p><a href="/">${esc(brand)}</a></p></header>
<main id="main">
${body}
</main>
<footer><p class="meta">Free, hands-on Jupyter workshops.</p></footer>
</body>
</html>
`;
}

export interface CatalogItem {
  id: string;
  title: string;
  description?: string;
  duration: number;
  category: string[];
  free: number;
}

export function catalogPage(items: CatalogItem[], brand?: string): string {
  const cards = items.map((w) =>
    `<article class="card" aria-labelledby="w-${esc(w.id)}">
<h2 id="w-${esc(w.id)}"><a href="/workshops/${encodeURIComponent(w.id)}">${esc(w.title)}</a></h2>
<p>${esc(w.description ?? "")}</p>
<p class="meta">${esc(w.id)} · ${esc(w.duration)} h${
      w.category.length ? ` · ${esc(w.category.join(", "))}` : ""
    } · 
<span data-free="${esc(w.id)}">${
      w.free === 0 ? "Full right now" : `${w.free} seat${w.free === 1 ? "" : "s"} free`
    }</span></p>
</article>`
  ).join("\n");
  return layout(
    "Workshops",
    `<h1>Workshops</h1>\n${items.length ? cards : "<p>No workshop is open right now.</p>"}`,
    { brand },
  );
}

export interface FormValues {
  email?: string;
  first_name?: string;
  last_name?: string;
  company?: string;
  consent?: boolean;
}

export type FormErrors = Partial<Record<keyof FormValues | "form", string>>;

function field(
  name: keyof FormValues,
  label: string,
  type: string,
  values: FormValues,
  errors: FormErrors,
  autocomplete: string,
): string {
  const err = errors[name];
  const id = `f-${name}`;
  return `<label for="${id}">${esc(label)}</label>
<input id="${id}" name="${name}" type="${type}" required autocomplete="${autocomplete}" maxlength="${
    name === "email" ? 254 : 100
  }" value="${esc(values[name] ?? "")}"${err ? ` aria-invalid="true" aria-describedby="${id}-err"` : ""}>
${err ? `<p class="err" id="${id}-err">${esc(err)}</p>` : ""}`;
}

export function workshopPage(
  w: CatalogItem,
  opts: { csrf: string; values?: FormValues; errors?: FormErrors; termsUrl?: string; brand?: string },
): string {
  const values = opts.values ?? {};
  const errors = opts.errors ?? {};
  const list = Object.entries(errors).filter(([k]) => k !== "form");
  const summary = errors.form || list.length
    ? `<div class="alert" role="alert" tabindex="-1" id="problems"><h2>The registration was not accepted</h2>
${errors.form ? `<p>${esc(errors.form)}</p>` : ""}${
      list.length
        ? `<ul>${list.map(([k, v]) => `<li><a href="#f-${esc(k)}">${esc(v)}</a></li>`).join("")}</ul>`
        : ""
    }</div>`
    : "";
  const consentErr = errors.consent;
  const form = w.free === 0 && !errors.form
    ? `<p class="alert" role="status">This workshop is full right now. Seats come back when other participants finish: try again later.</p>`
    : `<form method="post" action="/register" novalidate>
<input type="hidden" name="csrf" value="${esc(opts.csrf)}">
<input type="hidden" name="workshop" value="${esc(w.id)}">
${field("email", "Email address", "email", values, errors, "email")}
${field("first_name", "First name", "text", values, errors, "given-name")}
${field("last_name", "Last name", "text", values, errors, "family-name")}
${field("company", "Company or organisation", "text", values, errors, "organization")}
<div class="hp" aria-hidden="true"><label for="f-website">Leave this field empty</label>
<input id="f-website" name="website" type="text" tabindex="-1" autocomplete="off"></div>
<label class="check" for="f-consent"><input id="f-consent" name="consent" type="checkbox" value="yes"${
      values.consent ? " checked" : ""
    }${consentErr ? ` aria-invalid="true" aria-describedby="f-consent-err"` : ""}>
<span>I agree to the ${
      opts.termsUrl ? `<a href="${esc(opts.termsUrl)}">terms of use</a>` : "terms of use"
    }: my name and email are kept to run this workshop and deleted afterwards.</span></label>
${consentErr ? `<p class="err" id="f-consent-err">${esc(consentErr)}</p>` : ""}
<button type="submit">Register</button>
</form>`;
  return layout(
    w.title,
    `<h1>${esc(w.title)}</h1>
<p>${esc(w.description ?? "")}</p>
<p class="meta">${esc(w.id)} · ${esc(w.duration)} hours · <span data-free="${esc(w.id)}">${
      w.free === 0 ? "Full right now" : `${w.free} seat${w.free === 1 ? "" : "s"} free`
    }</span></p>
${summary}
<h2>Register</h2>
${form}`,
    { brand: opts.brand },
  );
}

export type StatusKind = "preparing" | "ready" | "reminded" | "ending" | "ended" | "deleted";

export interface StatusView {
  kind: StatusKind;
  workshopTitle: string;
  workshop: string;
  username?: string;
  hubLink?: string;
  expires?: string;
  completion?: number | null;
}

export function statusBlock(v: StatusView): string {
  const final = v.kind === "ended" || v.kind === "deleted";
  const text: Record<StatusKind, string> = {
    preparing: "Preparing: your workshop is being set up. The password arrives by email within minutes.",
    ready: "Ready: your workshop is waiting for you.",
    reminded: "Ready, ending soon: a reminder was sent, save your work.",
    ending: "Ending: your seat is being cleaned up.",
    ended: "Ended: this workshop is over and your seat was cleaned up. Thank you for taking part.",
    deleted: "Your personal data was deleted.",
  };
  const link = (v.kind === "ready" || v.kind === "reminded") && v.hubLink
    ? `<p><a href="${esc(v.hubLink)}">Open the workshop (${
      esc(v.workshop)
    }, first notebook)</a> and log in as <strong>${
      esc(v.username)
    }</strong> with the password from the email.</p>`
    : "";
  return `<p class="status" data-status="${v.kind}"${final ? " data-final" : ""}>${esc(text[v.kind])}</p>
${link}${v.expires && !final ? `<p>Your seat is held until ${esc(v.expires)} UTC.</p>` : ""}${
    v.completion !== undefined && v.completion !== null ? `<p>Completion: ${esc(v.completion)} %.</p>` : ""
  }`;
}

export function statusPage(
  v: StatusView,
  opts: { partialUrl: string; deleteAction: string; csrf: string; brand?: string; message?: string },
): string {
  const canDelete = v.kind !== "deleted";
  return layout(
    `Status of your ${v.workshopTitle} workshop`,
    `<h1>${esc(v.workshopTitle)}</h1>
${opts.message ? `<p class="ok" role="status">${esc(opts.message)}</p>` : ""}
<div id="live" aria-live="polite" data-src="${esc(opts.partialUrl)}">
${statusBlock(v)}
</div>
<noscript><p>Reload this page to see the latest status.</p></noscript>
${
      canDelete
        ? `<h2>Your data</h2>
<form method="post" action="${esc(opts.deleteAction)}">
<input type="hidden" name="csrf" value="${esc(opts.csrf)}">
<p>Delete your name and email now. If the workshop is still running, it ends and your seat is cleaned up.</p>
<button type="submit" class="danger">Delete my data and end the workshop</button>
</form>`
        : ""
    }`,
    { brand: opts.brand, script: "/static/status.js" },
  );
}

export function messagePage(title: string, text: string, brand?: string): string {
  return layout(
    title,
    `<h1>${esc(title)}</h1>\n<p>${esc(text)}</p>\n<p><a href="/">Back to the workshops</a></p>`,
    {
      brand,
    },
  );
}

export function loginPage(opts: { csrf: string; error?: string; brand?: string }): string {
  return layout(
    "Administration",
    `<h1>Administration</h1>
${opts.error ? `<p class="alert" role="alert">${esc(opts.error)}</p>` : ""}
<form method="post" action="/admin/login">
<input type="hidden" name="csrf" value="${esc(opts.csrf)}">
<label for="a-user">User name</label><input id="a-user" name="username" type="text" required autocomplete="username">
<label for="a-pass">Password</label><input id="a-pass" name="password" type="password" required autocomplete="current-password">
<button type="submit">Log in</button>
</form>`,
    { brand: opts.brand },
  );
}

export function table(
  headers: string[],
  rows: (string | number | null)[][],
  raw: Set<number> = new Set(),
): string {
  return `<table><thead><tr>${
    headers.map((h) => `<th scope="col">${esc(h)}</th>`).join("")
  }</tr></thead><tbody>
${
    rows.map((r) =>
      `<tr>${r.map((c, i) => `<td>${raw.has(i) ? String(c ?? "") : esc(c ?? "")}</td>`).join("")}</tr>`
    )
      .join("\n")
  }
</tbody></table>`;
}
