"use strict";
// Herald's console: one page, one view at a time (`#health`, `#posts`, ...), each drawn from
// the `/v1` API with the session cookie. Text goes into the page through `textContent` only,
// never as HTML. Every change sends the session's CSRF token and a fresh Idempotency-Key.

const meta = (name) => document.querySelector(`meta[name="herald-${name}"]`).content;
const CSRF = meta("csrf");
const KIND = meta("kind");
const ROLE = meta("role");
const ADMIN = ROLE === "admin";
const PLATFORMS = ["x", "facebook", "linkedin", "mastodon", "bluesky", "instagram"];
const POST_STATUSES = ["", "pending_approval", "scheduled", "dispatched", "published",
  "partially_published", "needs_attention", "rejected", "cancelled"];

const view = document.getElementById("view");

/** An element with attributes (`on*` functions become listeners) and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** One call to the API; a session that ended sends the browser back to sign in. */
async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") {
    headers["x-herald-csrf"] = CSRF;
    headers["idempotency-key"] = crypto.randomUUID();
  }
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    location.assign("/console");
    return { status: 401, ok: false, data: null };
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { detail: text }; }
  return { status: response.status, ok: response.ok, data };
}

/** A problem document, said plainly (with its field errors). */
function problem(answer) {
  const d = answer.data || {};
  const fields = (d.errors || []).map((e) => el("li", {}, `${e.field}: ${e.message}`));
  return el("div", { class: "error", role: "alert" },
    el("p", {}, `${d.title || "Error"} (${answer.status}): ${d.detail || ""}`),
    fields.length ? el("ul", {}, fields) : null);
}

function time(value) {
  return value ? new Date(value).toLocaleString() : "";
}

function table(headings, rows, attrs = {}) {
  return el("table", attrs,
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

function statusBadge(status) {
  return el("span", { class: `badge ${status}`, "data-status": status }, status);
}

/** A button that asks once more before it acts. */
function confirmButton(label, id, act) {
  const button = el("button", { type: "button", id });
  button.textContent = label;
  let armed = false;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = `Confirm: ${label.toLowerCase()}`;
      button.classList.add("armed");
      return;
    }
    button.disabled = true;
    await act();
  });
  return button;
}

function show(title, ...content) {
  view.replaceChildren(el("h2", {}, title), ...content.filter((c) => c !== null && c !== undefined));
}

// ---- views ----

async function healthView(onlyQueues) {
  const answer = await api("GET", "/v1/health");
  const data = answer.data || {};
  const rows = [];
  for (const [name, checks] of Object.entries(data.checks || {})) {
    const isQueue = checks.some((c) => c.componentType === "queue") || /dead|queue/i.test(name);
    if (onlyQueues && !isQueue) continue;
    for (const c of checks) {
      const value = c.observedValue === undefined ? "" : `${c.observedValue}${c.observedUnit ? " " + c.observedUnit : ""}`;
      rows.push(el("tr", { "data-check": name, "data-component": c.componentId },
        el("td", {}, name), el("td", {}, c.componentId), el("td", {}, statusBadge(c.status)),
        el("td", {}, value), el("td", {}, c.output || "")));
    }
  }
  show(onlyQueues ? "Queues" : "Health",
    el("p", { id: "overall" }, "Overall: ", statusBadge(data.status || "unknown"),
      data.releaseId ? ` · release ${data.releaseId}` : ""),
    rows.length ? table(["Check", "Component", "Status", "Observed", "Why"], rows, { id: "checks" })
      : el("p", {}, "No checks are visible to this key."));
}

async function crisisView() {
  const answer = await api("GET", "/v1/crisis");
  if (!answer.ok) return show("Crisis switch", problem(answer));
  const c = answer.data;
  const state = c.active
    ? el("p", { id: "crisis-state", "data-active": "true" },
      `Paused: ${c.all_platforms ? "every platform" : c.platforms.join(", ")} — “${c.reason}”, until ${time(c.expires_at)} (by ${c.started_by})`)
    : el("p", { id: "crisis-state", "data-active": "false" }, "Publishing is not paused.");
  const out = el("div", { id: "crisis-result" });
  const boxes = PLATFORMS.map((p) => el("label", {},
    el("input", { type: "checkbox", name: "platform", value: p, id: `pause-${p}` }), ` ${p}`));
  const reason = el("input", { id: "pause-reason", maxlength: 500, placeholder: "Why (shown in the audit log)" });
  const hours = el("input", { id: "pause-hours", type: "number", min: 1, max: 720, value: 24 });
  const pause = el("button", { type: "submit", id: "pause" }, "Pause");
  const form = el("form", { id: "pause-form" },
    el("fieldset", {}, el("legend", {}, "Platforms (none ticked: every platform)"), boxes),
    el("label", {}, "Reason ", reason), el("label", {}, "For hours ", hours), pause);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const platforms = [...form.querySelectorAll("input[name=platform]:checked")].map((b) => b.value);
    const expires = new Date(Date.now() + Number(hours.value) * 3600e3).toISOString();
    const body = { reason: reason.value, expires_at: expires };
    if (platforms.length) body.platforms = platforms;
    const r = await api("PUT", "/v1/crisis", body);
    if (r.ok) return crisisView();
    out.replaceChildren(problem(r));
  });
  const lift = c.active ? confirmButton("Lift the pause", "lift", async () => {
    const r = await api("DELETE", "/v1/crisis");
    if (r.ok) return crisisView();
    out.replaceChildren(problem(r));
  }) : null;
  show("Crisis switch", state, lift, out, el("h3", {}, c.active ? "Replace the pause" : "Pause publishing"), form);
}

async function deadLettersView(cursor) {
  const path = "/v1/dead-letters?limit=50" + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
  const answer = await api("GET", path);
  if (!answer.ok) return show("Dead letters", problem(answer));
  const out = el("div", { id: "dead-letter-result" });
  const detail = el("pre", { id: "dead-letter-detail" });
  const rows = answer.data.items.map((d) => el("tr", { "data-dead-letter": d.id },
    el("td", {}, d.source), el("td", {}, d.type), el("td", {}, time(d.sent_at)),
    el("td", {}, d.reason || ""), el("td", {}, String(d.receive_count)),
    el("td", {},
      el("button", { type: "button", class: "inspect", onclick: async () => {
        const r = await api("GET", `/v1/dead-letters/${encodeURIComponent(d.id)}`);
        detail.textContent = JSON.stringify(r.data, null, 2);
      } }, "Inspect"),
      el("button", { type: "button", class: "requeue", onclick: async (event) => {
        event.target.disabled = true;
        const r = await api("POST", `/v1/dead-letters/${encodeURIComponent(d.id)}/requeue`);
        if (!r.ok) return out.replaceChildren(problem(r));
        out.replaceChildren(el("p", { class: "done" }, `Requeued ${d.id}.`));
        event.target.closest("tr").remove();
      } }, "Requeue"),
      confirmButton("Delete", `delete-${d.id}`, async () => {
        const r = await api("DELETE", `/v1/dead-letters/${encodeURIComponent(d.id)}`);
        if (!r.ok) return out.replaceChildren(problem(r));
        out.replaceChildren(el("p", { class: "done" }, `Deleted ${d.id}.`));
        deadLettersView(cursor);
      }))));
  const more = answer.data.next_cursor
    ? el("button", { type: "button", id: "more", onclick: () => deadLettersView(answer.data.next_cursor) }, "Next page")
    : null;
  show("Dead letters", out,
    rows.length ? table(["Source", "Type", "Failed at", "Reason", "Receives", ""], rows, { id: "dead-letters" })
      : el("p", { id: "no-dead-letters" }, "No dead letters."),
    more, detail);
}

async function auditView(filter = {}) {
  const query = new URLSearchParams({ limit: "50" });
  for (const [k, v] of Object.entries(filter)) if (v) query.set(k, v);
  const answer = await api("GET", `/v1/audit?${query}`);
  const entity = el("input", { id: "audit-entity", placeholder: "entity, e.g. crisis", value: filter.entity || "" });
  const action = el("input", { id: "audit-action", placeholder: "action, e.g. crisis.started", value: filter.action || "" });
  const form = el("form", { id: "audit-filter" }, entity, action, el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    auditView({ entity: entity.value.trim(), action: action.value.trim() });
  });
  const verdict = el("div", { id: "audit-verdict" });
  const verify = el("button", { type: "button", id: "verify", onclick: async () => {
    const r = await api("GET", "/v1/audit/verify");
    if (!r.ok) return verdict.replaceChildren(problem(r));
    const d = r.data;
    verdict.replaceChildren(el("p", { class: d.ok ? "done" : "error", "data-ok": String(d.ok) },
      d.ok ? `The chain holds: ${d.records} records in ${d.chains} chains.`
        : `${d.findings.length} problems in ${d.records} records:`),
    el("ul", {}, d.findings.map((f) => el("li", {}, `${f.entity} #${f.seq ?? "?"}: ${f.problem}`))));
  } }, "Verify the chain");
  if (!answer.ok) return show("Audit log", form, problem(answer));
  const rows = answer.data.items.map((a) => el("tr", { "data-action": a.action },
    el("td", {}, time(a.at)), el("td", {}, a.entity), el("td", {}, a.action), el("td", {}, a.actor),
    el("td", {}, el("code", {}, JSON.stringify(a.new ?? a.old ?? null)))));
  show("Audit log", form, verify, verdict,
    table(["At", "Entity", "Action", "Actor", "Change"], rows, { id: "audit" }));
}

async function keysView() {
  const answer = await api("GET", "/v1/api-keys");
  if (!answer.ok) return show("API keys", problem(answer));
  const out = el("div", { id: "key-result" });
  const rows = answer.data.items.map((k) => el("tr", { "data-key": k.id },
    el("td", {}, k.name), el("td", {}, k.role), el("td", {}, k.hint || ""), el("td", {}, statusBadge(k.status)),
    el("td", {}, time(k.created_at)), el("td", {}, time(k.last_used_at)),
    el("td", {}, k.status === "active" ? confirmButton("Revoke", `revoke-${k.id}`, async () => {
      const r = await api("DELETE", `/v1/api-keys/${encodeURIComponent(k.id)}`);
      if (!r.ok) return out.replaceChildren(problem(r));
      keysView();
    }) : "")));
  show("API keys", out, table(["Name", "Role", "Key", "Status", "Created", "Last used", ""], rows, { id: "keys" }));
}

async function postsView(status = "", cursor) {
  const query = new URLSearchParams({ limit: "50" });
  if (status) query.set("status", status);
  if (cursor) query.set("cursor", cursor);
  const answer = await api("GET", `/v1/posts?${query}`);
  const select = el("select", { id: "post-status" },
    POST_STATUSES.map((s) => el("option", { value: s, selected: s === status }, s || "any status")));
  select.addEventListener("change", () => postsView(select.value));
  if (!answer.ok) return show("Posts", select, problem(answer));
  const rows = answer.data.items.map((p) => el("tr", { "data-post": p.id, "data-status": p.status },
    el("td", {}, time(p.scheduled_at)), el("td", {}, statusBadge(p.status)), el("td", {}, p.text),
    el("td", {}, el("ul", { class: "variants" }, p.variants.map((v) => el("li",
      { "data-platform": v.platform, "data-variant-status": v.status },
      `${v.platform} `, statusBadge(v.status), ` · ${v.attempts} attempts`,
      v.last_error ? ` · ${v.last_error.message}` : "")))),
  ));
  const more = answer.data.next_cursor
    ? el("button", { type: "button", id: "more", onclick: () => postsView(status, answer.data.next_cursor) }, "Next page")
    : null;
  show("Posts", el("label", {}, "Status ", select),
    el("button", { type: "button", id: "refresh", onclick: () => postsView(status, cursor) }, "Refresh"),
    table(["Scheduled", "Status", "Text", "Variants"], rows, { id: "posts" }), more);
}

async function campaignsView(cursor) {
  const query = new URLSearchParams({ limit: "50" });
  if (cursor) query.set("cursor", cursor);
  const [answer, wallet] = await Promise.all([api("GET", `/v1/campaigns?${query}`), api("GET", "/v1/wallet")]);
  if (!answer.ok) return show("Campaigns", problem(answer));
  const out = el("div", { id: "campaign-result" });
  const credits = wallet.ok
    ? el("p", { id: "wallet" }, `Credits: ${wallet.data.balance} available, ${wallet.data.reserved} reserved`,
      wallet.data.debt ? `, ${wallet.data.debt} owed` : "")
    : problem(wallet);
  const rows = answer.data.items.map((c) => {
    const p = c.progress;
    const done = p.sent + p.failed + p.skipped;
    const live = c.status === "enqueuing" || c.status === "sending";
    return el("tr", { "data-campaign": c.id, "data-status": c.status },
      el("td", {}, c.name), el("td", {}, c.sender), el("td", {}, statusBadge(c.status)),
      el("td", { class: "progress" }, `${done}/${p.recipients} done: ${p.sent} sent, ${p.delivered} delivered, `
        + `${p.undelivered} undelivered, ${p.failed} failed, ${p.skipped} skipped`),
      el("td", { class: "credits" }, `${p.credits_used} used, ${p.credits_released} released of ${p.credits_reserved}`),
      el("td", {}, c.quiet_hours ? `${c.quiet_hours.start}–${c.quiet_hours.end} (${c.quiet_hours.time_zone})` : ""),
      el("td", {}, c.problem ? c.problem.type : ""),
      el("td", {}, live && (ROLE === "admin" || ROLE === "editor")
        ? confirmButton("Cancel", `cancel-${c.id}`, async () => {
          const r = await api("POST", `/v1/campaigns/${encodeURIComponent(c.id)}/cancel`);
          if (!r.ok) return out.replaceChildren(problem(r));
          await campaignsView(cursor);
          document.getElementById("campaign-result").replaceChildren(el("p", { class: "done" }, `${c.name} is cancelled.`));
        }) : ""));
  });
  const more = answer.data.next_cursor
    ? el("button", { type: "button", id: "more", onclick: () => campaignsView(answer.data.next_cursor) }, "Next page")
    : null;
  show("Campaigns", credits, out,
    el("button", { type: "button", id: "refresh", onclick: () => campaignsView(cursor) }, "Refresh"),
    table(["Name", "Sender", "Status", "Progress", "Credits", "Quiet hours", "Problem", ""], rows, { id: "campaigns" }), more);
}

async function accountsView() {
  const answer = await api("GET", "/v1/accounts");
  if (!answer.ok) return show("Accounts", problem(answer));
  const out = el("div", { id: "account-result" });
  const rows = answer.data.items.map((a) => el("tr", { "data-account": a.id, "data-circuit": a.circuit },
    el("td", {}, a.platform), el("td", {}, a.display_name || a.external_id), el("td", {}, statusBadge(a.status)),
    el("td", {}, statusBadge(a.circuit)), el("td", {}, time(a.token_expires_at)),
    el("td", {}, ADMIN && a.circuit !== "closed" ? el("button", { type: "button", class: "reset-circuit", onclick: async () => {
      const r = await api("POST", `/v1/accounts/${encodeURIComponent(a.id)}/reset-circuit`);
      if (!r.ok) return out.replaceChildren(problem(r));
      accountsView();
    } }, "Reset circuit") : "")));
  show("Accounts", out, table(["Platform", "Account", "Status", "Circuit", "Token expires", ""], rows, { id: "accounts" }));
}

async function streamsView() {
  const answer = await api("GET", "/v1/streams");
  if (!answer.ok) return show("Ingestion streams", problem(answer));
  const out = el("div", { id: "stream-result" });
  const rows = answer.data.items.map((s) => el("tr", { "data-stream": s.key },
    el("td", {}, s.key), el("td", {}, s.leased ? "running" : s.in_progress ? "mid-run" : "idle"),
    el("td", {}, time(s.next_due)), el("td", {}, time(s.deferred_until)),
    el("td", {}, `${s.counters.processed} processed, ${s.counters.failed} failed`),
    el("td", {}, ADMIN ? el("button", { type: "button", class: "retry-stream", onclick: async () => {
      const r = await api("POST", `/v1/streams/${encodeURIComponent(s.key)}/retry`);
      out.replaceChildren(r.ok ? el("p", { class: "done" }, `${s.key} is due now.`) : problem(r));
    } }, "Retry now") : "")));
  show("Ingestion streams", out, table(["Stream", "State", "Next run", "Deferred until", "Counters", ""], rows, { id: "streams" }));
}

async function appBlocksView() {
  const answer = await api("GET", "/v1/health");
  const out = el("div", { id: "block-result" });
  const blocks = ((answer.data || {}).checks || {})["platform:appBlock"] || [];
  const rows = blocks.map((b) => el("tr", { "data-platform": b.componentId },
    el("td", {}, b.componentId), el("td", {}, statusBadge(b.status)), el("td", {}, b.output || "no block"),
    el("td", {}, b.status === "pass" ? "" : el("button", { type: "button", class: "clear-block", onclick: async () => {
      const r = await api("DELETE", `/v1/app-blocks/${encodeURIComponent(b.componentId)}`);
      if (!r.ok) return out.replaceChildren(problem(r));
      await appBlocksView();
      document.getElementById("block-result").replaceChildren(
        el("p", { class: "done" }, `${b.componentId}'s block is lifted.`));
    } }, "Clear block"))));
  show("App blocks", el("p", {}, "A platform that told Herald's app to stop holds every call until its block ends."),
    out, table(["Platform", "Status", "Block", ""], rows, { id: "app-blocks" }));
}

async function tenantsView() {
  const out = el("div", { id: "tenant-result" });
  const id = el("input", { id: "tenant-id", placeholder: "ten_…", required: true });
  const reason = el("input", { id: "suspend-reason", placeholder: "Why (told to the tenant's every request)" });
  const act = (verb) => async () => {
    const body = verb === "suspend" ? { reason: reason.value } : undefined;
    const r = await api("POST", `/v1/tenants/${encodeURIComponent(id.value.trim())}/${verb}`, body);
    out.replaceChildren(r.ok ? el("p", { class: "done" }, `${verb === "suspend" ? "Suspended" : "Resumed"} ${id.value.trim()}.`) : problem(r));
  };
  show("Tenants", el("p", {}, "Suspend a tenant: every key of it is refused until it is resumed."),
    el("label", {}, "Tenant ", id), el("label", {}, "Reason ", reason),
    el("button", { type: "button", id: "suspend", onclick: act("suspend") }, "Suspend"),
    el("button", { type: "button", id: "resume", onclick: act("resume") }, "Resume"), out);
}

// ---- navigation ----

const VIEWS = KIND === "operator"
  ? { health: ["Health", () => healthView(false)], queues: ["Queues", () => healthView(true)],
    "app-blocks": ["App blocks", appBlocksView], tenants: ["Tenants", tenantsView] }
  : Object.fromEntries(Object.entries({
    health: ["Health", () => healthView(false), ADMIN], queues: ["Queues", () => healthView(true), ADMIN],
    posts: ["Posts", () => postsView(), true], campaigns: ["Campaigns", () => campaignsView(), true],
    accounts: ["Accounts", accountsView, true],
    streams: ["Streams", streamsView, ADMIN], crisis: ["Crisis switch", crisisView, ADMIN],
    "dead-letters": ["Dead letters", () => deadLettersView(), ADMIN], audit: ["Audit log", () => auditView(), ADMIN],
    keys: ["API keys", keysView, ADMIN],
  }).filter(([, v]) => v[2]));

function route() {
  const name = location.hash.slice(1);
  const chosen = VIEWS[name] ? name : Object.keys(VIEWS)[0];
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", link.dataset.view === chosen);
  }
  view.replaceChildren(el("p", {}, "Loading…"));
  VIEWS[chosen][1]().catch((error) => show("Error", el("p", { class: "error" }, String(error))));
}

document.getElementById("nav").append(...Object.entries(VIEWS).map(([name, [label]]) =>
  el("a", { href: `#${name}`, id: `nav-${name}`, "data-view": name }, label)));
window.addEventListener("hashchange", route);
route();
