// ResolveMeQ operations console: one module, no dependencies, no build step.
//
// Every figure it shows comes from the public API, called with the bearer token the user pastes
// (or that `make dev` puts in the link's fragment, which never reaches a server log). The token is
// kept in sessionStorage: it lives as long as the tab. Roles read from the token only decide which
// buttons to show; the API decides what is allowed.

const API = new URL("../", window.location.href); // the page is /api/console/, the API /api/
const TOKEN_KEY = "resolvemeq.console.token";
const main = document.getElementById("main");
const announcer = document.getElementById("announcer");

// ---------------------------------------------------------------------------------------------
// DOM helpers: text is always set as text, never parsed as HTML.

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  return append(el, children);
}

function announce(text) {
  announcer.textContent = "";
  window.setTimeout(() => { announcer.textContent = text; }, 50);
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

function words(value) {
  return String(value ?? "—").replaceAll("_", " ");
}

function badge(value, extra) {
  return h("span", { class: `badge ${value ?? ""} ${extra ?? ""}` }, words(value));
}

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

// ---------------------------------------------------------------------------------------------
// Token and API

function readToken() {
  return window.sessionStorage.getItem(TOKEN_KEY) || "";
}

function claims(token) {
  try {
    const part = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    const json = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    const roles = new Set(Array.isArray(json.roles) ? json.roles : []);
    if (roles.has("admin")) roles.add("staff");
    return { sub: String(json.sub ?? ""), roles, exp: json.exp ? new Date(json.exp * 1000) : null };
  } catch {
    return null;
  }
}

function me() {
  const token = readToken();
  const c = token ? claims(token) : null;
  return {
    token,
    sub: c?.sub ?? "",
    staff: Boolean(c?.roles.has("staff")),
    admin: Boolean(c?.roles.has("admin")),
    exp: c?.exp ?? null,
  };
}

class ApiError extends Error {
  constructor(status, body) {
    const detail = body && typeof body === "object" && body.detail ? body.detail : `The server answered ${status}.`;
    super(detail);
    this.status = status;
    this.code = body?.code ?? "";
    this.body = body;
  }
}

async function api(method, path, body, accept = "application/json") {
  const headers = { Accept: accept };
  const token = readToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(new URL(path, API), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, { detail: "The API cannot be reached. Is the host running?", code: "network" });
  }
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) throw new ApiError(response.status, typeof data === "object" ? data : null);
  return { data, headers: response.headers, status: response.status };
}

function errorBox(error) {
  const text = error instanceof ApiError ? error.message : String(error?.message ?? error);
  const extra = error?.status === 401 ? [" ", h("a", { href: "#/token" }, "Paste a valid token.")] : [];
  return h("p", { class: "error", role: "alert" }, text, extra);
}

// A 404 from an analytics endpoint means this deployment does not have it yet.
function missingBox(path) {
  return h(
    "p",
    { class: "notice", role: "status", "data-missing": path },
    `This server does not offer ${path} yet (it answered 404), so this part is not shown. `,
    "It arrives with the analytics feature (issue #10).",
  );
}

// ---------------------------------------------------------------------------------------------
// Charts: inline SVG drawn here, no library and no request. Each chart has a title and a text
// description for screen readers, and the figures are also given in a table beside it.

function lineChart({ title, series, labels, max = 100, unit = "%" }) {
  const width = 640, height = 240, left = 40, right = 28, top = 12, bottom = 36;
  const ticks = max === 5 ? 5 : 4;
  const plotW = width - left - right, plotH = height - top - bottom;
  const x = (i) => left + (labels.length <= 1 ? plotW / 2 : (i * plotW) / (labels.length - 1));
  const y = (v) => top + plotH - (Math.max(0, Math.min(max, v)) / max) * plotH;
  const titleId = nextId("chart-title"), descId = nextId("chart-desc");
  const summary = series
    .map((se) => `${se.name}: ${se.values.map((v, i) => `${labels[i]} ${v === null ? "no data" : v + unit}`).join(", ")}`)
    .join(". ");
  const svg = s("svg", {
    class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${titleId} ${descId}`,
  }, s("title", { id: titleId }, title), s("desc", { id: descId }, summary));
  for (let t = 0; t <= ticks; t++) {
    const v = (max * t) / ticks;
    svg.append(s("line", { class: "grid-line", x1: left, x2: width - right, y1: y(v), y2: y(v) }));
    svg.append(s("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, `${Math.round(v)}${unit}`));
  }
  svg.append(s("line", { class: "axis", x1: left, x2: width - right, y1: top + plotH, y2: top + plotH }));
  const every = Math.max(1, Math.ceil(labels.length / 7));
  labels.forEach((label, i) => {
    if (i % every === 0 || i === labels.length - 1) {
      svg.append(s("text", { x: x(i), y: height - bottom + 16, "text-anchor": "middle" }, label));
    }
  });
  series.forEach((se, n) => {
    let d = "";
    se.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      d += `${d && se.values[i - 1] !== null && se.values[i - 1] !== undefined ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      svg.append(s("circle", { class: `series-${n}`, cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 3 }));
    });
    if (d) svg.append(s("path", { class: `line series-${n}`, d }));
  });
  const legend = h("ul", { class: "legend", "aria-hidden": "true" },
    series.map((se, n) => h("li", {}, h("span", { class: `swatch series-${n}` }), se.name)));
  return h("figure", { class: "card" }, h("figcaption", {}, h("h3", {}, title)), legend, svg,
    dataTable(title, ["Day", ...series.map((se) => se.name)],
      labels.map((label, i) => [label, ...series.map((se) => (se.values[i] === null ? "no data" : `${se.values[i]}${unit}`))])));
}

function barChart({ title, bars, unit = "" }) {
  const width = 640, rowH = 26, left = 190, right = 60;
  const height = Math.max(1, bars.length) * rowH + 10;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const titleId = nextId("chart-title"), descId = nextId("chart-desc");
  const svg = s("svg", {
    class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${titleId} ${descId}`,
  }, s("title", { id: titleId }, title),
  s("desc", { id: descId }, bars.map((b) => `${b.label}: ${b.value}${unit}`).join(", ") || "No data."));
  bars.forEach((b, i) => {
    const yTop = 5 + i * rowH;
    const w = ((width - left - right) * b.value) / max;
    svg.append(s("text", { x: left - 8, y: yTop + 16, "text-anchor": "end" }, b.label));
    svg.append(s("rect", { class: `bar ${b.kind ?? ""}`, x: left, y: yTop + 3, width: Math.max(0, w).toFixed(1), height: rowH - 8, rx: 3 }));
    svg.append(s("text", { x: left + w + 6, y: yTop + 16 }, `${b.value}${unit}`));
  });
  return h("figure", { class: "card" }, h("figcaption", {}, h("h3", {}, title)),
    bars.length ? svg : h("p", { class: "muted" }, "No data in this range."),
    dataTable(title, ["", "Value"], bars.map((b) => [b.label, `${b.value}${unit}`])));
}

function dataTable(title, head, rows) {
  return h("details", {}, h("summary", {}, "Figures as a table"),
    h("div", { class: "table-wrap" }, h("table", {},
      h("caption", { class: "visually-hidden" }, title),
      h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))))));
}

// ---------------------------------------------------------------------------------------------
// Screens

const STATUSES = ["new", "open", "in_progress", "pending_clarification", "escalated", "assigned", "resolved", "closed"];
const CATEGORIES = ["other", "wifi", "laptop", "vpn", "printer", "email", "software", "hardware", "network",
  "account", "access", "phone", "server", "security", "cloud", "storage"];
const AGENT_STATUSES = new Set(["new", "open", "pending_clarification"]);

function screen(title, ...content) {
  main.replaceChildren();
  append(main, [h("h1", { tabindex: "-1", id: "screen-title" }, title), content]);
}

function needToken() {
  if (me().token) return false;
  screen("Paste a token first", h("p", {}, "The console calls the API with your bearer token. ",
    h("a", { href: "#/token" }, "Paste it on the Token screen"), "."));
  return true;
}

async function ticketsScreen(params) {
  if (needToken()) return;
  const status = params.get("status") || "";
  const list = h("div", { "aria-live": "polite" }, h("p", { class: "muted" }, "Loading…"));
  const form = newTicketForm();
  const filter = h("form", { class: "row", onsubmit: (e) => {
    e.preventDefault();
    const v = e.target.elements.status.value;
    window.location.hash = v ? `#/tickets?status=${v}` : "#/tickets";
  } },
  h("div", {}, h("label", { for: "status-filter" }, "Status"),
    h("select", { id: "status-filter", name: "status" }, h("option", { value: "" }, "Any"),
      STATUSES.map((st) => h("option", { value: st, selected: st === status }, words(st))))),
  h("div", {}, h("button", { type: "submit", class: "secondary" }, "Filter")));
  screen(me().staff ? "Tickets (all)" : "My tickets", form, h("section", { class: "card", "aria-labelledby": "list-title" },
    h("h2", { id: "list-title" }, "Tickets"), filter, list));
  await loadTickets(list, status, null);
}

async function loadTickets(container, status, cursor) {
  const query = new URLSearchParams({ limit: "20" });
  if (status) query.set("status", status);
  if (cursor) query.set("cursor", cursor);
  try {
    const { data } = await api("GET", `tickets/?${query}`);
    const rows = data.results.map((t) => h("tr", { "data-ticket": t.id },
      h("td", {}, h("a", { href: `#/tickets/${t.id}` }, `#${t.id}`)),
      h("td", {}, t.issue_type),
      h("td", {}, badge(t.status)),
      h("td", { class: "hide-narrow" }, words(t.priority)),
      h("td", { class: "hide-narrow" }, when(t.created_at))));
    let table = container.querySelector("table");
    if (!cursor || !table) {
      table = h("table", {}, h("caption", { class: "visually-hidden" }, "Tickets, newest first"),
        h("thead", {}, h("tr", {}, ["#", "Issue", "Status"].map((c) => h("th", { scope: "col" }, c)),
          h("th", { scope: "col", class: "hide-narrow" }, "Priority"), h("th", { scope: "col", class: "hide-narrow" }, "Created"))),
        h("tbody", {}));
      container.replaceChildren(data.results.length ? h("div", { class: "table-wrap" }, table) : h("p", {}, "No tickets."));
    }
    table.querySelector("tbody").append(...rows);
    container.querySelector(".more")?.remove();
    if (data.next_cursor) {
      container.append(h("p", { class: "more" }, h("button", { type: "button", class: "secondary", onclick: () => loadTickets(container, status, data.next_cursor) }, "Load more")));
    }
  } catch (error) {
    container.replaceChildren(errorBox(error));
  }
}

function newTicketForm() {
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    if (!f.issue_type.value.trim()) {
      error.textContent = "Say in a few words what the issue is.";
      f.issue_type.focus();
      return;
    }
    error.textContent = "";
    try {
      const { data } = await api("POST", "tickets/", {
        issue_type: f.issue_type.value.trim(), category: f.category.value, description: f.description.value,
      });
      announce(`Ticket ${data.id} created.`);
      window.location.hash = `#/tickets/${data.id}`;
    } catch (err) {
      error.replaceChildren(errorBox(err));
    }
  } },
  h("div", { class: "row" },
    h("div", {}, h("label", { for: "new-issue" }, "Issue"),
      h("input", { id: "new-issue", name: "issue_type", type: "text", maxlength: "100", required: true, autocomplete: "off" })),
    h("div", {}, h("label", { for: "new-category" }, "Category"),
      h("select", { id: "new-category", name: "category" }, CATEGORIES.map((c) => h("option", { value: c }, c))))),
  h("label", { for: "new-description" }, "Description"),
  h("textarea", { id: "new-description", name: "description", maxlength: "10000", rows: "3" }),
  error,
  h("div", { class: "actions" }, h("button", { type: "submit", id: "new-ticket-submit" }, "Create ticket")));
  return h("details", { class: "card" }, h("summary", {}, "New ticket"), form);
}

async function ticketScreen(id) {
  if (needToken()) return;
  screen(`Ticket #${id}`, h("p", { class: "muted" }, "Loading…"));
  let ticket, history;
  try {
    [ticket, history] = await Promise.all([
      api("GET", `tickets/${id}/`).then((r) => r.data),
      api("GET", `tickets/${id}/action-history/?limit=50`).then((r) => r.data),
    ]);
  } catch (error) {
    screen(`Ticket #${id}`, errorBox(error), h("p", {}, h("a", { href: "#/tickets" }, "Back to the tickets")));
    return;
  }
  screen(`Ticket #${ticket.id}: ${ticket.issue_type}`,
    h("p", {}, h("a", { href: "#/tickets" }, "← All tickets")),
    ticketFacts(ticket),
    agentCard(ticket),
    resolutionCard(ticket),
    feedbackCard(ticket),
    historyCard(ticket, history));
}

function ticketFacts(t) {
  const message = h("p", { role: "status", id: "process-status" });
  const run = async () => {
    message.textContent = "Asking the agent…";
    try {
      const { data, status } = await api("POST", `tickets/${t.id}/process/`, {});
      if (status === 200) {
        message.textContent = data.detail || "Nothing to do.";
        return;
      }
      message.textContent = "Queued for the agent; this page reloads when it has acted.";
      await waitForChange(t);
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  };
  return h("section", { class: "card", "aria-labelledby": "facts-title" },
    h("h2", { id: "facts-title" }, "Status"),
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", {}, h("span", { id: "ticket-status", "data-status": t.status }, badge(t.status))),
      h("dt", {}, "Priority"), h("dd", {}, words(t.priority)),
      h("dt", {}, "Category"), h("dd", {}, t.category),
      h("dt", {}, "Team"), h("dd", {}, t.assigned_team || "—"),
      h("dt", {}, "Owner"), h("dd", {}, t.user),
      h("dt", {}, "Created"), h("dd", {}, when(t.created_at)),
      h("dt", {}, "Updated"), h("dd", {}, when(t.updated_at)),
      h("dt", {}, "Description"), h("dd", {}, t.description || "—")),
    AGENT_STATUSES.has(t.status) ? h("div", { class: "actions" },
      h("button", { type: "button", id: "process-button", onclick: run }, "Ask the agent")) : null,
    message);
}

async function waitForChange(t) {
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => window.setTimeout(r, 500));
    const { data } = await api("GET", `tickets/${t.id}/`);
    if (data.updated_at !== t.updated_at) {
      announce(`The agent acted: the ticket is now ${words(data.status)}.`);
      return route();
    }
  }
  return undefined;
}

function agentCard(t) {
  const a = t.agent;
  const body = !a ? [h("p", { class: "muted" }, "The agent has not analysed this ticket.")] : [
    h("dl", { class: "facts" },
      h("dt", {}, "Confidence"), h("dd", { id: "agent-confidence" }, a.confidence === null || a.confidence === undefined ? "—" : `${Math.round(a.confidence * 100)} %`),
      h("dt", {}, "Recommended"), h("dd", {}, words(a.recommended_action)),
      h("dt", {}, "Decided"), h("dd", {}, words(a.decided_action)),
      a.analysis?.severity ? [h("dt", {}, "Severity"), h("dd", {}, a.analysis.severity)] : null,
      a.analysis?.suggested_team ? [h("dt", {}, "Suggested team"), h("dd", {}, a.analysis.suggested_team)] : null,
      h("dt", {}, "Analysed"), h("dd", {}, when(a.processed_at))),
    h("h3", {}, "Reasoning"), h("p", { id: "agent-reasoning" }, a.reasoning || "—"),
    a.solution?.steps?.length ? [h("h3", {}, "Suggested solution"), h("ol", {}, a.solution.steps.map((st) => h("li", {}, st)))] : null,
  ];
  return h("section", { class: "card", "aria-labelledby": "agent-title" }, h("h2", { id: "agent-title" }, "Agent analysis"), body);
}

function resolutionCard(t) {
  const r = t.resolution;
  if (!r) return null;
  return h("section", { class: "card", "aria-labelledby": "resolution-title" },
    h("h2", { id: "resolution-title" }, "Resolution"),
    h("dl", { class: "facts" },
      h("dt", {}, "By"), h("dd", {}, words(r.autonomous_action)),
      h("dt", {}, "Outcome"), h("dd", {}, h("span", { id: "resolution-outcome", "data-outcome": r.outcome }, badge(r.outcome))),
      h("dt", {}, "Confirmed"), h("dd", {}, r.resolution_confirmed === null ? "not answered" : r.resolution_confirmed ? "yes" : "no"),
      h("dt", {}, "Satisfaction"), h("dd", {}, r.satisfaction_score ? `${r.satisfaction_score} / 5` : "—"),
      r.feedback_text ? [h("dt", {}, "Feedback"), h("dd", {}, r.feedback_text)] : null,
      h("dt", {}, "Follow-up sent"), h("dd", {}, when(r.followup_sent_at)),
      r.reopened ? [h("dt", {}, "Reopened"), h("dd", {}, `${when(r.reopened_at)}: ${r.reopened_reason}`)] : null));
}

let thanked = null; // the answer just sent: its ticket shows the thank-you instead of the form

function feedbackCard(t) {
  const r = t.resolution;
  if (!r || r.outcome === "voided") return null;
  const error = h("p", { class: "error", role: "alert", id: "feedback-error" });
  const section = h("section", { class: "card", "aria-labelledby": "feedback-title", id: "feedback" });
  if (thanked?.id === t.id) {
    const { message } = thanked;
    thanked = null;
    return append(section, [h("h2", { id: "feedback-title" }, "How did we do?"),
      h("div", { class: "success", id: "feedback-thanks", tabindex: "-1" },
        h("p", {}, h("strong", {}, "Thank you for your feedback!")), h("p", {}, message))]);
  }
  const stars = [1, 2, 3, 4, 5].map((n) => h("label", {},
    h("input", { type: "radio", name: "satisfaction_score", value: String(n) }), `${n} star${n > 1 ? "s" : ""}`));
  const form = h("form", { novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const answer = f.resolution_confirmed.value;
    if (!answer) {
      error.textContent = "Choose thumbs up or thumbs down first.";
      e.target.querySelector("input[name=resolution_confirmed]").focus();
      return;
    }
    error.textContent = "";
    try {
      const { data } = await api("POST", `tickets/${t.id}/resolution-feedback/`, {
        resolution_confirmed: answer === "yes",
        satisfaction_score: f.satisfaction_score.value ? Number(f.satisfaction_score.value) : null,
        feedback_text: f.feedback_text.value,
      });
      // The whole ticket is shown again (status, resolution), with the thank-you in this card.
      thanked = { id: t.id, message: data.message };
      announce("Thank you for your feedback.");
      await route();
      document.getElementById("feedback-thanks")?.focus();
    } catch (err) {
      error.replaceChildren(errorBox(err));
    }
  } },
  h("fieldset", {}, h("legend", {}, "Did the fix work? (required)"),
    h("div", { class: "thumbs" },
      h("label", {}, h("input", { type: "radio", name: "resolution_confirmed", value: "yes", required: true, "aria-describedby": "feedback-error" }), thumb(true), "Yes, it works"),
      h("label", {}, h("input", { type: "radio", name: "resolution_confirmed", value: "no", "aria-describedby": "feedback-error" }), thumb(false), "No, still broken"))),
  h("fieldset", {}, h("legend", {}, "How happy are you with it? (optional)"), h("div", { class: "stars" }, stars)),
  h("label", { for: "feedback-text" }, "Anything to add? (optional)"),
  h("textarea", { id: "feedback-text", name: "feedback_text", maxlength: "2000", rows: "3" }),
  error,
  h("div", { class: "actions" }, h("button", { type: "submit", id: "feedback-submit" }, "Send feedback")));
  const answered = r.resolution_confirmed !== null && r.resolution_confirmed !== undefined;
  return append(section, [h("h2", { id: "feedback-title" }, "How did we do?"),
    answered ? h("p", { class: "muted" }, "You answered already; a new answer replaces it.") : null, form]);
}

// A thumb drawn inline (no emoji font needed); decorative, the label says it in words.
function thumb(up) {
  return s("svg", { viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false" },
    s("path", { transform: up ? null : "rotate(180 12 12)",
      d: "M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z" }));
}

function historyCard(t, history) {
  const user = me();
  const items = history.action_history.map((e) => {
    const autonomous = e.executed_by === "autonomous_agent";
    const can = user.admin && e.rollback_possible && !e.rolled_back;
    const before = e.before_state?.status, after = e.after_state?.status;
    return h("li", { class: autonomous ? "autonomous" : "", "data-action": e.id },
      h("p", {}, h("strong", {}, words(e.action_type)), " ",
        before && after && before !== after ? h("span", { class: "muted" }, `(${words(before)} → ${words(after)})`) : null),
      h("p", { class: "meta" }, `${when(e.executed_at)} · by ${e.executed_by}`,
        e.confidence_score !== null && e.confidence_score !== undefined ? ` · confidence ${Math.round(e.confidence_score * 100)} %` : ""),
      e.agent_reasoning ? h("p", {}, e.agent_reasoning) : null,
      e.action_params?.reason && e.action_params.reason !== e.agent_reasoning ? h("p", {}, "Reason: ", words(e.action_params.reason)) : null,
      e.rolled_back ? h("p", { class: "notice" }, `Rolled back ${when(e.rolled_back_at)} by ${e.rolled_back_by}: ${e.rollback_reason ?? ""}`) : null,
      can ? h("button", { type: "button", class: "danger small rollback", "data-action-id": e.id,
        onclick: (ev) => openRollback(t, e, ev.currentTarget) }, `Roll back ${words(e.action_type)}`) : null);
  });
  return h("section", { class: "card", "aria-labelledby": "history-title" },
    h("h2", { id: "history-title", tabindex: "-1" }, "Autonomous Action History"),
    h("p", { class: "muted" }, `${history.total_actions} ${history.total_actions === 1 ? "entry" : "entries"}, newest first.`),
    items.length ? h("ol", { class: "history" }, items) : h("p", {}, "No actions yet."));
}

// The rollback modal: a native <dialog> opened with showModal(), so the page behind it is inert
// and Escape closes it; focus starts in the reason and goes back where it was after.
const dialog = document.getElementById("rollback-dialog");
const rollbackForm = document.getElementById("rollback-form");
const rollbackError = document.getElementById("rollback-error");
let rollbackTarget = null;

function openRollback(ticket, entry, opener) {
  rollbackTarget = { ticket, entry, opener };
  document.getElementById("rollback-what").textContent =
    `${words(entry.action_type)} on ticket #${ticket.id} (${when(entry.executed_at)}). The ticket goes back to how it was before.`;
  rollbackForm.reset();
  rollbackError.textContent = "";
  document.getElementById("rollback-force-row").hidden = true;
  dialog.showModal();
  document.getElementById("rollback-reason").focus();
}

dialog.addEventListener("close", () => {
  const opener = rollbackTarget?.opener;
  if (opener && document.contains(opener)) opener.focus();
  else document.getElementById("history-title")?.focus();
});
document.getElementById("rollback-cancel").addEventListener("click", () => dialog.close());
rollbackForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const reason = document.getElementById("rollback-reason");
  if (!reason.value.trim()) {
    rollbackError.textContent = "Say why you roll it back.";
    reason.focus();
    return;
  }
  const confirm = document.getElementById("rollback-confirm");
  confirm.disabled = true;
  try {
    const { entry } = rollbackTarget;
    const force = document.getElementById("rollback-force").checked;
    const { data } = await api("POST", `tickets/actions/${encodeURIComponent(entry.id)}/rollback/`,
      { reason: reason.value.trim(), ...(force ? { force: true } : {}) });
    rollbackTarget.opener = null;
    dialog.close();
    announce(`${data.message} The ticket is now ${words(data.ticket.status)}.`);
    await route();
    document.getElementById("history-title")?.focus();
  } catch (error) {
    // A 409 says why in a sentence (already rolled back, not reversible, the ticket changed).
    rollbackError.textContent = error.message;
    if (error.code === "ticket_changed") document.getElementById("rollback-force-row").hidden = false;
    reason.focus();
  } finally {
    confirm.disabled = false;
  }
});

async function notificationsScreen() {
  if (needToken()) return;
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  screen("Notifications", h("section", { class: "card" }, list));
  try {
    const { data } = await api("GET", "auth/notifications/?limit=50");
    const unread = data.filter((n) => !n.is_read).length;
    const items = data.map((n) => {
      const li = h("li", { class: n.is_read ? "" : "unread", "data-notification": n.id },
        h("p", {}, n.is_read ? "" : h("span", { class: "visually-hidden" }, "Unread: "), n.title),
        h("p", { class: "meta muted" }, `${when(n.time)} · ${words(n.type)}`),
        h("p", {}, n.message));
      if (!n.is_read) {
        li.append(h("button", { type: "button", class: "secondary small mark-read", onclick: async () => {
          try {
            await api("PATCH", `auth/notifications/${encodeURIComponent(n.id)}/read/`);
            announce("Marked as read.");
            await route();
            (document.querySelector("button.mark-read") ?? document.getElementById("screen-title"))?.focus();
          } catch (error) { li.append(errorBox(error)); }
        } }, "Mark as read", h("span", { class: "visually-hidden" }, `: ${n.title}`)));
      }
      return li;
    });
    list.replaceChildren(
      h("p", { id: "notification-count" }, `${data.length} notification${data.length === 1 ? "" : "s"}, ${unread} unread.`),
      unread ? h("p", {}, h("button", { type: "button", class: "secondary", onclick: async () => {
        try {
          const { data: marked } = await api("POST", "auth/notifications/read-all/");
          announce(`${marked.marked} marked as read.`);
          await route();
        } catch (error) { list.append(errorBox(error)); }
      } }, "Mark all as read")) : null,
      items.length ? h("ul", { class: "plain" }, items) : h("p", {}, "Nothing yet."));
  } catch (error) {
    list.replaceChildren(errorBox(error));
  }
}

// Analytics ------------------------------------------------------------------------------------

const DAY = 86400000;
const isoDay = (d) => d.toISOString().slice(0, 10);

function figure(name, label, value, format) {
  return h("div", { class: "figure", "data-figure": name, "data-value": JSON.stringify(value ?? null) },
    h("span", { class: "value" }, value === null || value === undefined ? "—" : format ? format(value) : String(value)),
    h("span", { class: "label" }, label));
}

const pct = (v) => `${v} %`;

async function analyticsScreen(params) {
  if (needToken()) return;
  const today = new Date();
  const until = params.get("until") || isoDay(today);
  const since = params.get("since") || isoDay(new Date(Date.parse(until) - 13 * DAY));
  const form = h("form", { class: "row", onsubmit: (e) => {
    e.preventDefault();
    const f = e.target.elements;
    window.location.hash = `#/analytics?since=${f.since.value}&until=${f.until.value}`;
  } },
  h("div", {}, h("label", { for: "since" }, "From (UTC day)"), h("input", { type: "date", id: "since", name: "since", value: since, required: true })),
  h("div", {}, h("label", { for: "until" }, "To (UTC day)"), h("input", { type: "date", id: "until", name: "until", value: until, required: true })),
  h("div", {}, h("button", { type: "submit", class: "secondary" }, "Show")));
  const resolution = h("section", { "aria-labelledby": "res-title" }, h("h2", { id: "res-title" }, "Resolution Analytics"), h("p", { class: "muted" }, "Loading…"));
  const agent = h("section", { "aria-labelledby": "agent-an-title" }, h("h2", { id: "agent-an-title" }, "Agent analytics"), h("p", { class: "muted" }, "Loading…"));
  const weekly = h("section", { "aria-labelledby": "weekly-title" }, h("h2", { id: "weekly-title" }, "Weekly rollout report"), weeklyForm());
  screen("Analytics", h("div", { class: "card" }, form), resolution, agent, weekly);
  await Promise.all([resolutionAnalytics(resolution, since, until), agentAnalytics(agent, since, until), weeklyReport(weekly, params.get("week"))]);
}

async function resolutionAnalytics(section, since, until) {
  const path = "tickets/resolution-analytics/";
  const body = h("div", {});
  section.replaceChildren(section.firstChild, body);
  let total;
  try {
    ({ data: total } = await api("GET", `${path}?since=${since}&until=${until}`));
  } catch (error) {
    body.replaceChildren(error.status === 404 ? missingBox(`/api/${path}`) : errorBox(error));
    return;
  }
  body.append(h("div", { class: "figures", id: "resolution-figures" },
    figure("total_resolutions", "Resolutions", total.total_resolutions),
    figure("success_rate", "Success rate", total.success_rate, pct),
    figure("confirmed_successful", "Confirmed working", total.confirmed_successful),
    figure("confirmed_failed", "Reported broken", total.confirmed_failed),
    figure("assumed_resolved", "Assumed (no answer)", total.assumed_resolved),
    figure("pending_feedback", "Awaiting an answer", total.pending_feedback),
    figure("average_satisfaction_score", "Average satisfaction", total.average_satisfaction_score, (v) => `${v} / 5`),
    figure("reopened_tickets", "Reopened", total.reopened_tickets),
    figure("reopen_rate", "Reopen rate", total.reopen_rate, pct),
    figure("rolled_back", "Rolled back", total.rolled_back),
    figure("rollback_rate", "Rollback rate", total.rollback_rate, pct)));
  // Over days: one call per day of the range (at most 31 days are drawn).
  const days = [];
  for (let t = Date.parse(since); t <= Date.parse(until) && days.length < 31; t += DAY) days.push(isoDay(new Date(t)));
  const daily = await Promise.all(days.map((d) => api("GET", `${path}?since=${d}&until=${d}`).then((r) => r.data).catch(() => null)));
  const pick = (key) => daily.map((d) => (d && d.total_resolutions ? d[key] ?? null : null));
  const labels = days.map((d) => d.slice(5));
  body.append(h("div", { class: "grid" },
    lineChart({ title: "Success, reopen and rollback rates by day", labels, series: [
      { name: "Success rate", values: pick("success_rate") },
      { name: "Reopen rate", values: pick("reopen_rate") },
      { name: "Rollback rate", values: pick("rollback_rate") },
    ] }),
    lineChart({ title: "Average satisfaction by day", labels, max: 5, unit: "", series: [
      { name: "Satisfaction (1–5)", values: daily.map((d) => d?.average_satisfaction_score ?? null) },
    ] })));
  const breakdown = total.action_type_breakdown || [];
  body.append(barChart({ title: "Resolutions by action type", bars: breakdown.flatMap((b) => [
    { label: `${words(b.autonomous_action)}: total`, value: b.total },
    { label: "confirmed", value: b.confirmed, kind: "alt" },
    { label: "failed", value: b.failed, kind: "bad" },
  ]) }));
}

async function agentAnalytics(section, since, until) {
  const path = "tickets/agent/analytics/";
  const body = h("div", {});
  section.replaceChildren(section.firstChild, body);
  let a;
  try {
    ({ data: a } = await api("GET", `${path}?since=${since}&until=${until}`));
  } catch (error) {
    body.replaceChildren(error.status === 404 ? missingBox(`/api/${path}`) : errorBox(error));
    return;
  }
  body.append(h("div", { class: "figures", id: "agent-figures" },
    figure("agent_status", "Agent", a.agent_status, words),
    figure("rollout_percent", "Rollout", a.rollout_percent, pct),
    figure("total_tickets", "Tickets", a.total_tickets),
    figure("processed_by_agent", "Processed by the agent", a.processed_by_agent),
    figure("agent_processing_rate", "Processing rate", a.agent_processing_rate, pct),
    figure("resolution_success_rate", "Resolution success", a.resolution_success_rate, pct),
    figure("average_confidence_score", "Average confidence", a.average_confidence_score),
    figure("autonomous_solutions", "Autonomous solutions", a.autonomous_solutions),
    figure("deferred_to_human", "Deferred to people", a.deferred_to_human),
    figure("autonomous_actions_last_hour", `Actions, last hour (cap ${a.caps?.per_hour ?? "—"})`, a.autonomous_actions_last_hour),
    figure("autonomous_actions_today", `Actions today (cap ${a.caps?.per_day ?? "—"})`, a.autonomous_actions_today)),
  h("p", { class: "muted" }, `Updated ${when(a.last_updated)}.`));
  const dist = a.confidence_distribution || {};
  const actions = a.actions_by_type || {};
  body.append(h("div", { class: "grid" },
    barChart({ title: "Confidence of the agent's decisions", bars: ["high", "medium", "low"].map((k) => ({ label: k, value: dist[k] ?? 0, kind: k === "low" ? "bad" : "" })) }),
    barChart({ title: "Actions by type", bars: Object.entries(actions).map(([k, v]) => ({ label: words(k), value: v })) })));
}

function lastCompleteWeek() {
  // ISO week of the day 7 days ago.
  const d = new Date(Date.now() - 7 * DAY);
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const year = t.getUTCFullYear();
  const week = Math.ceil(((t - Date.UTC(year, 0, 1)) / DAY + 1) / 7);
  return `${year}-W${String(week).padStart(2, "0")}`;
}

function weeklyForm() {
  return h("form", { class: "row card", id: "weekly-form", onsubmit: (e) => {
    e.preventDefault();
    const week = e.target.elements.week.value;
    const q = new URLSearchParams(window.location.hash.split("?")[1] || "");
    q.set("week", week);
    window.location.hash = `#/analytics?${q}`;
  } },
  h("div", {}, h("label", { for: "week" }, "ISO week (YYYY-Www)"),
    h("input", { type: "text", id: "week", name: "week", pattern: "\\d{4}-W\\d{2}", placeholder: lastCompleteWeek(), inputmode: "text" })),
  h("div", {}, h("button", { type: "submit", class: "secondary" }, "Show the week")));
}

async function weeklyReport(section, week) {
  const path = "tickets/reports/weekly/";
  const chosen = week || lastCompleteWeek();
  section.querySelector("#week").value = chosen;
  const body = h("div", {});
  section.append(body);
  let report;
  try {
    ({ data: report } = await api("GET", `${path}?week=${encodeURIComponent(chosen)}`));
  } catch (error) {
    body.replaceChildren(error.status === 404 ? missingBox(`/api/${path}`) : errorBox(error));
    return;
  }
  const criteria = report.criteria || [];
  const verdict = (c) => (c.passed === null || c.passed === undefined ? "nodata" : c.passed ? "pass" : "fail");
  const csv = h("button", { type: "button", class: "secondary", onclick: async () => {
    try {
      const { data } = await api("GET", `${path}?week=${encodeURIComponent(chosen)}&format=csv`, undefined, "text/csv");
      const link = h("a", { href: URL.createObjectURL(new Blob([data], { type: "text/csv" })), download: `weekly-${chosen}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (error) { body.append(errorBox(error)); }
  } }, "Download CSV");
  const range = report.current ?? report;
  const overall = report.all_passed === undefined ? null
    : h("p", { id: "weekly-verdict" }, "All criteria: ",
      badge(report.all_passed === null ? "no data" : report.all_passed ? "pass" : "fail",
        report.all_passed === null ? "nodata" : report.all_passed ? "pass" : "fail"));
  body.append(h("div", { class: "card" },
    h("p", {}, `Week ${report.week ?? chosen}`, range.since ? `: ${range.since} to ${range.until}` : "", "."),
    overall,
    h("div", { class: "table-wrap" }, h("table", { id: "criteria" },
      h("caption", {}, "Rollout criteria"),
      h("thead", {}, h("tr", {}, ["Criterion", "Figure", "Threshold", "Result"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, criteria.map((c) => h("tr", { "data-criterion": c.name, "data-passed": JSON.stringify(c.passed ?? null) },
        h("td", {}, words(c.name)),
        h("td", {}, c.figure === null || c.figure === undefined ? "no data" : String(c.figure)),
        h("td", {}, `${c.comparison ?? ""} ${c.threshold ?? ""}`.trim()),
        h("td", {}, badge(verdict(c) === "nodata" ? "no data" : verdict(c) === "pass" ? "pass" : "fail", verdict(c)))))))),
    h("div", { class: "actions" }, csv)));
  if (report.current && report.previous) body.append(weekComparison(report.current, report.previous));
  const chartable = criteria.filter((c) => typeof c.figure === "number");
  if (chartable.length) {
    body.append(barChart({ title: "Criteria figures this week", bars: chartable.map((c) => ({ label: words(c.name), value: c.figure, kind: c.passed === false ? "bad" : "alt" })) }));
  }
}

// This week's figures beside the week before's.
const COMPARED = [
  ["resolution", "total_resolutions", "Resolutions", ""],
  ["resolution", "success_rate", "Success rate", " %"],
  ["resolution", "average_satisfaction_score", "Average satisfaction", ""],
  ["resolution", "reopen_rate", "Reopen rate", " %"],
  ["resolution", "rollback_rate", "Rollback rate", " %"],
  ["agent", "agent_processing_rate", "Agent processing rate", " %"],
  ["agent", "average_confidence_score", "Average confidence", ""],
];

function weekComparison(current, previous) {
  const show = (week, part, key, unit) => {
    const v = week?.[part]?.[key];
    return v === null || v === undefined ? "no data" : `${v}${unit}`;
  };
  return h("div", { class: "card table-wrap" }, h("table", { id: "week-comparison" },
    h("caption", {}, "This week and the week before"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Figure"),
      h("th", { scope: "col" }, `${current.week ?? "This week"}`), h("th", { scope: "col" }, `${previous.week ?? "Week before"}`))),
    h("tbody", {}, COMPARED.map(([part, key, label, unit]) => h("tr", { "data-figure": key },
      h("th", { scope: "row" }, label), h("td", {}, show(current, part, key, unit)), h("td", {}, show(previous, part, key, unit)))))));
}

// Agent controls -------------------------------------------------------------------------------

async function controlsScreen() {
  if (needToken()) return;
  screen("Agent controls", h("p", { class: "muted" }, "Loading…"));
  let c;
  try {
    ({ data: c } = await api("GET", "agent/controls/"));
  } catch (error) {
    screen("Agent controls", errorBox(error));
    return;
  }
  const error = h("p", { class: "error", role: "alert", id: "controls-error" });
  const state = c.enabled ? (c.mode === "shadow" ? "shadow" : "active") : "paused";
  const put = async (change) => {
    const reason = document.getElementById("controls-reason");
    if (!reason.value.trim()) {
      error.textContent = "A reason is required: it is recorded in the audit.";
      reason.focus();
      return;
    }
    try {
      const { data } = await api("PUT", "agent/controls/", { ...change, reason: reason.value.trim() });
      announce(`Saved: the agent is ${data.enabled ? (data.mode === "shadow" ? "in shadow mode" : "active") : "paused"}.`);
      await route();
    } catch (err) {
      error.replaceChildren(errorBox(err));
    }
  };
  const slider = h("input", { type: "range", id: "rollout", name: "rollout", min: "0", max: "100", step: "5", value: String(c.rollout_percent), "aria-describedby": "rollout-value" });
  const output = h("output", { id: "rollout-value", for: "rollout" }, `${c.rollout_percent} %`);
  slider.addEventListener("input", () => { output.textContent = `${slider.value} %`; });
  const shadow = h("input", { type: "checkbox", id: "shadow", name: "shadow", checked: c.mode === "shadow" });
  screen("Agent controls",
    h("section", { class: "card", "aria-labelledby": "now-title" }, h("h2", { id: "now-title" }, "Now"),
      h("dl", { class: "facts" },
        h("dt", {}, "Agent"), h("dd", {}, h("span", { id: "agent-state", "data-state": state }, badge(state))),
        h("dt", {}, "Mode"), h("dd", {}, c.mode),
        h("dt", {}, "Rollout"), h("dd", {}, `${c.rollout_percent} % of tickets`),
        h("dt", {}, "Reason"), h("dd", {}, c.reason || "—"),
        h("dt", {}, "Changed by"), h("dd", {}, c.updated_by || "settings default"),
        h("dt", {}, "Changed"), h("dd", {}, when(c.updated_at)))),
    h("section", { class: "card", "aria-labelledby": "change-title" }, h("h2", { id: "change-title" }, "Change"),
      h("label", { for: "controls-reason" }, "Reason (required, recorded in the audit)"),
      h("textarea", { id: "controls-reason", name: "reason", maxlength: "1000", rows: "2", required: true }),
      error,
      h("div", { class: "actions" },
        c.enabled
          ? h("button", { type: "button", class: "danger", id: "pause-agent", onclick: () => put({ enabled: false }) }, "Pause the agent")
          : h("button", { type: "button", id: "resume-agent", onclick: () => put({ enabled: true }) }, "Resume the agent")),
      h("label", { for: "rollout" }, "Rollout: share of tickets the agent may act on"),
      slider, output,
      h("p", { class: "inline" }, shadow, h("label", { for: "shadow" }, "Shadow mode: decide and record, change nothing")),
      h("div", { class: "actions" }, h("button", { type: "button", id: "save-controls", class: "secondary",
        onclick: () => put({ rollout_percent: Number(slider.value), mode: shadow.checked ? "shadow" : "autonomous" }) }, "Save rollout and mode"))));
}

// Health and token -----------------------------------------------------------------------------

async function healthScreen() {
  screen("Health", h("p", { class: "muted" }, "Loading…"));
  let report;
  try {
    ({ data: report } = await api("GET", "health/"));
  } catch (error) {
    // A degraded service answers 503 with its report; any other error is a problem (its sentence).
    report = typeof error.body?.status === "string" ? error.body : null;
    if (!report) {
      screen("Health", errorBox(error));
      return;
    }
  }
  const depth = (obj) => Object.entries(obj || {}).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === null ? "unknown" : String(v))]);
  screen("Health",
    h("section", { class: "card" },
      h("p", {}, "Status: ", h("span", { id: "health-status" }, badge(report.status, report.status === "ok" ? "pass" : "fail"))),
      report.storage ? h("dl", { class: "facts" },
        h("dt", {}, "Version"), h("dd", {}, report.version),
        h("dt", {}, "Environment"), h("dd", {}, report.environment),
        h("dt", {}, "Storage"), h("dd", {}, report.storage.ok ? "ok" : `failing: ${report.storage.error ?? ""}`),
        h("dt", {}, "Agent"), h("dd", {}, `${report.agent.status} (${report.agent.mode}, ${report.agent.rollout_percent} %)`)) :
        h("p", { class: "muted" }, "Staff see storage, queues and the agent here.")),
    report.queues ? h("section", { class: "card" }, h("h2", {}, "Queues"), h("dl", { class: "facts" }, depth(report.queues)),
      h("h2", {}, "Poison queues"), h("dl", { class: "facts" }, depth(report.poison))) : null);
}

function tokenScreen() {
  const user = me();
  const error = h("p", { class: "error", role: "alert" });
  screen("Token",
    h("section", { class: "card" },
      user.token ? h("p", { id: "token-who" }, `Signed in as ${user.sub}`, user.admin ? " (admin)" : user.staff ? " (staff)" : " (user)",
        user.exp ? `, token valid until ${when(user.exp.toISOString())}` : "", ".") : h("p", {}, "No token yet."),
      h("form", { novalidate: true, onsubmit: (e) => {
        e.preventDefault();
        const value = e.target.elements.token.value.trim().replace(/^Bearer\s+/i, "");
        if (!claims(value)) {
          error.textContent = "That is not a bearer token (a JWT: three parts separated by dots).";
          e.target.elements.token.focus();
          return;
        }
        window.sessionStorage.setItem(TOKEN_KEY, value);
        window.location.hash = "#/tickets";
      } },
      h("label", { for: "token-input" }, "Bearer token"),
      h("textarea", { id: "token-input", name: "token", rows: "3", autocomplete: "off", spellcheck: "false" }),
      h("p", { class: "note" }, "Kept in this tab only (sessionStorage) and sent only to this API. `make dev` prints a link that fills it in."),
      error,
      h("div", { class: "actions" },
        user.token ? h("button", { type: "button", class: "secondary", onclick: () => {
          window.sessionStorage.removeItem(TOKEN_KEY);
          route();
        } }, "Forget the token") : null,
        h("button", { type: "submit" }, "Use this token")))));
}

// ---------------------------------------------------------------------------------------------
// Routing

function takeTokenFromFragment() {
  // `#token=...` (the link `make dev` prints): keep it for this tab, then drop it from the URL and
  // the history, so it is neither shown nor bookmarked.
  const match = window.location.hash.match(/^#token=([^&]+)/);
  if (!match) return;
  window.sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  window.history.replaceState(null, "", window.location.pathname + window.location.search + "#/tickets");
}

function showIdentity() {
  const user = me();
  document.getElementById("who").textContent = user.token
    ? `${user.sub} · ${user.admin ? "admin" : user.staff ? "staff" : "user"}`
    : "no token";
  for (const el of document.querySelectorAll("[data-staff]")) el.classList.toggle("hidden-role", !user.staff);
  for (const el of document.querySelectorAll("[data-admin]")) el.classList.toggle("hidden-role", !user.admin);
}

let rendered = "";

async function route() {
  takeTokenFromFragment();
  showIdentity();
  const [path, query] = (window.location.hash.slice(1) || "/tickets").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const name = parts[0] || "tickets";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.screen === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const fresh = rendered !== window.location.hash;
  rendered = window.location.hash;
  if (name === "tickets" && parts[1]) await ticketScreen(Number.parseInt(parts[1], 10));
  else if (name === "tickets") await ticketsScreen(params);
  else if (name === "notifications") await notificationsScreen();
  else if (name === "analytics") await analyticsScreen(params);
  else if (name === "controls") await controlsScreen();
  else if (name === "health") await healthScreen();
  else if (name === "token") tokenScreen();
  else screen("Not found", h("p", {}, h("a", { href: "#/tickets" }, "Go to the tickets")));
  document.title = `${document.getElementById("screen-title")?.textContent ?? "Console"} · ResolveMeQ console`;
  // A new screen moves focus to its title, so keyboard and screen-reader users start there.
  if (fresh && !dialog.open) document.getElementById("screen-title")?.focus();
  main.dataset.ready = rendered;
}

window.addEventListener("hashchange", route);
route();
