// The tajo-events page: overview, customer, campaigns and feeds, read from the projections API.
// Plain DOM, no library; every value from the API is set as text, never parsed as HTML.
"use strict";
(() => {
  const API = document.querySelector('meta[name="tajo-api-base"]').content.replace(/\/$/, "");
  const TOKEN_KEY = "tajo-api-token";
  const PAGE = 20;
  const REFRESH_MS = 15000;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const view = $("view");
  const banner = $("banner");
  const login = $("login");
  let refresh = null;
  let pendingSearch = null;

  class ApiError extends Error {
    constructor(kind, message) {
      super(message);
      this.kind = kind;
    }
  }

  // -- the API ----------------------------------------------------------------------------------

  async function api(path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw new ApiError("token", "Enter the API token to see the data.");
    let response;
    try {
      response = await fetch(API + path, {
        headers: { Authorization: "Bearer " + token, Accept: "application/json" },
        cache: "no-store",
        credentials: "omit",
      });
    } catch (error) {
      throw new ApiError("unreachable", `The API cannot be reached (${location.origin}${API || "/"}): ${error.message}.`);
    }
    if (response.status === 401) {
      throw new ApiError("unauthorized", "The API refused this token (401 Unauthorized). Enter the right TAJO_API_TOKEN.");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      throw new ApiError("unreachable", `The API cannot be reached: it answered ${response.status} without JSON.`);
    }
    if (response.status === 404) return null;
    if (!response.ok) {
      throw new ApiError("http", `The API answered ${response.status}: ${(body && body.message) || response.statusText}.`);
    }
    return body;
  }

  function showError(error) {
    if (error.kind === "unauthorized" || error.kind === "token") {
      sessionStorage.removeItem(TOKEN_KEY);
      askToken(error.kind === "unauthorized" ? error.message : "");
      return;
    }
    say(error.message || String(error), "error");
  }

  function say(message, kind) {
    banner.textContent = message;
    banner.className = kind || "";
    banner.hidden = !message;
  }

  function askToken(message) {
    say(message, "error");
    login.hidden = false;
    view.replaceChildren();
    $("forget").hidden = true;
    $("token").focus();
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    login.hidden = true;
    say("");
    render().then(() => {
      const h2 = view.querySelector("h2");
      if (h2) h2.focus();
    });
  });

  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    askToken("");
  });

  // -- building the DOM -------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children.flat(Infinity)) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  const dash = "—";
  const num = (n) => (n === null || n === undefined ? dash : Number(n).toLocaleString("en"));
  const pct = (r) => (r === null || r === undefined ? dash : (r * 100).toFixed(1) + "%");
  const when = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC") : dash);
  const duration = (s) => {
    if (s === null || s === undefined) return dash;
    if (s < 120) return Math.round(s) + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  };

  function table(caption, columns, rows, attrs) {
    return el(
      "div",
      { class: "scroll" },
      el(
        "table",
        attrs || {},
        el("caption", {}, caption),
        el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
        el("tbody", {}, rows)
      )
    );
  }

  function cells(columns, row) {
    return columns.map((c) => el("td", { class: c.num ? "num" : null, "data-col": c.key }, c.show ? c.show(row) : row[c.key]));
  }

  function definitions(pairs, attrs) {
    return el("dl", attrs || {}, pairs.map(([term, value, key]) => [el("dt", {}, term), el("dd", { "data-field": key }, value)]));
  }

  function heading(text) {
    return el("h2", { tabindex: "-1" }, text);
  }

  function badge(status) {
    return el("span", { class: "badge " + status }, status);
  }

  // -- overview ---------------------------------------------------------------------------------

  const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569", "#ea580c"];
  function colour(type, types) {
    return PALETTE[types.indexOf(type) % PALETTE.length];
  }

  function chart(minutes, types) {
    const width = Math.round(Math.min(960, Math.max(320, window.innerWidth - 40)));
    const height = 150;
    const bar = width / minutes.length;
    const highest = Math.max(1, ...minutes.map((m) => Object.values(m.counts).reduce((a, b) => a + b, 0)));
    const bars = [];
    minutes.forEach((m, i) => {
      let y = height;
      for (const type of types) {
        const n = m.counts[type] || 0;
        if (!n) continue;
        const h = (n / highest) * (height - 10);
        y -= h;
        bars.push(
          svg("rect", { x: (i * bar + 0.5).toFixed(1), y: y.toFixed(1), width: Math.max(1, bar - 1).toFixed(1), height: h.toFixed(1), fill: colour(type, types) },
            svg("title", {}, `${when(m.minute)}: ${n} ${type}`))
        );
      }
    });
    const first = minutes.length ? when(minutes[0].minute).slice(11, 16) : "";
    const last = minutes.length ? when(minutes[minutes.length - 1].minute).slice(11, 16) : "";
    return el(
      "figure",
      { class: "chart" },
      svg(
        "svg",
        { viewBox: `0 0 ${width} ${height + 16}`, role: "img", "aria-label": `Events accepted per minute over the last hour; the busiest minute had ${highest}` },
        svg("line", { x1: 0, y1: height + 0.5, x2: width, y2: height + 0.5, class: "axis" }),
        bars,
        svg("text", { x: 0, y: height + 14, class: "tick" }, first + " UTC"),
        svg("text", { x: width, y: height + 14, class: "tick", "text-anchor": "end" }, last + " UTC"),
        svg("text", { x: 2, y: 10, class: "tick" }, `${highest} / min`)
      ),
      el(
        "figcaption",
        {},
        el("ul", { class: "legend" }, types.map((t) => el("li", {}, el("span", { class: "swatch", "data-colour": colour(t, types) }), t)))
      )
    );
  }

  function paintSwatches(root) {
    // colours set as SVG-free attributes: the page's CSP allows no inline style attribute
    for (const swatch of root.querySelectorAll(".swatch")) {
      const s = svg("svg", { viewBox: "0 0 10 10", width: 10, height: 10, "aria-hidden": "true" }, svg("rect", { width: 10, height: 10, fill: swatch.dataset.colour }));
      swatch.replaceChildren(s);
    }
  }

  async function overview() {
    const data = await api("/overview");
    const types = Object.keys(data.last_hour_totals);
    const hour = Object.entries(data.last_hour_totals);
    const brevo = data.brevo;
    const silence = brevo.silent
      ? el(
          "p",
          { class: "warning", role: "status", id: "brevo-silent" },
          brevo.last_event_at
            ? `Brevo has been silent for ${duration(brevo.silent_for_s)} (alert after ${duration(brevo.threshold_s)}). Check the webhooks: tajo-events webhooks audit.`
            : "No event from Brevo yet. Check the webhooks: tajo-events webhooks audit."
        )
      : null;
    const node = el(
      "div",
      {},
      heading("Overview"),
      el("p", { class: "muted" }, `As of ${when(data.now)} · projection version ${data.projection_version}`),
      silence,
      el(
        "div",
        { class: "grid" },
        el(
          "section",
          { class: "card", "aria-labelledby": "h-brevo" },
          el("h3", { id: "h-brevo" }, "Brevo"),
          definitions([
            ["Last event", when(brevo.last_event_at), "last_event_at"],
            ["Silent for", duration(brevo.silent_for_s), "silent_for"],
          ])
        ),
        el(
          "section",
          { class: "card", "aria-labelledby": "h-actions" },
          el("h3", { id: "h-actions" }, "Actions"),
          definitions([
            ["Carried out", num(data.actions.done), "actions_done"],
            ["Dead-lettered", num(data.actions.dead_lettered), "actions_dead"],
          ]),
          el("p", { class: "muted" }, data.actions.detail)
        ),
        el(
          "section",
          { class: "card", "aria-labelledby": "h-services" },
          el("h3", { id: "h-services" }, "Services"),
          el("ul", { class: "services" }, data.services.map((s) => el("li", { "data-service": s.name }, badge(s.status), " ", el("strong", {}, s.name), " ", el("span", { class: "muted" }, s.detail))))
        )
      ),
      el("h3", {}, "Events accepted per minute, last hour"),
      chart(data.last_hour, types),
      el(
        "div",
        { class: "grid tables" },
        table(
        "Last hour by type",
        [{ label: "Type" }, { label: "Events", num: true }],
        hour.map(([type, n]) => el("tr", { "data-type": type }, el("td", {}, type), el("td", { class: "num" }, num(n)))),
        { id: "last-hour" }
      ),
      table(
        "Fold lag",
        [{ label: "Partition" }, { label: "Head", num: true }, { label: "Folded", num: true }, { label: "Lag", num: true }],
        data.fold.map((p) => el("tr", { "data-partition": p.partition }, el("td", {}, p.partition), el("td", { class: "num" }, num(p.head)), el("td", { class: "num" }, num(p.folded)), el("td", { class: "num", "data-col": "lag" }, num(p.lag)))),
        { id: "fold-lag" }
      ),
      table(
        "Unknown event names",
        [{ label: "Name" }, { label: "Events", num: true }],
        data.unknown_names.length
          ? data.unknown_names.map((u) => el("tr", { "data-name": u.name }, el("td", {}, u.name || "(none)"), el("td", { class: "num" }, num(u.count))))
          : el("tr", {}, el("td", { colspan: 2, class: "muted" }, "None")),
        { id: "unknown-names" }
      ),
      table(
        "All events in the log by type",
        [{ label: "Type" }, { label: "Events", num: true }],
        Object.entries(data.totals).map(([type, n]) => el("tr", { "data-type": type }, el("td", {}, type), el("td", { class: "num" }, num(n)))),
        { id: "totals" }
      )
      )
    );
    paintSwatches(node);
    return node;
  }

  // -- customer ---------------------------------------------------------------------------------

  function customerCard(c) {
    const email = c.channels.email;
    const sms = c.channels.sms;
    return el(
      "section",
      { class: "card loyalty", id: "loyalty-card", "aria-labelledby": "h-card" },
      el("h3", { id: "h-card" }, c.email || c.phone),
      definitions([
        ["Tier", c.tier, "tier"],
        ["Score", c.engagement_score, "score"],
        ["Preferred channel", c.preferred_channel || "none", "preferred_channel"],
        ["Email", [badge(email.status), email.invalid_reason ? " " + email.invalid_reason : ""], "email_status"],
        ["SMS", [badge(sms.status), sms.failure_reason ? " " + sms.failure_reason : ""], "sms_status"],
        ["Marketing consent", c.marketing_enabled ? "yes" : "no", "consent"],
        ["Spam reported", c.spam_reported ? "yes" : "no", "spam_reported"],
        ["Rewards visits", c.rewards_visits, "rewards_visits"],
        ["Lists", c.lists.length ? c.lists.join(", ") : dash, "lists"],
        ["Email address", c.email || dash, "email"],
        ["Phone", c.phone || dash, "phone"],
        ["Open rate", pct(email.open_rate), "open_rate"],
        ["Click rate", pct(email.click_rate), "click_rate"],
      ])
    );
  }

  function timelineTable(t) {
    const columns = [
      { key: "at", label: "Time", show: (e) => when(e.at) },
      { key: "type", label: "Event" },
      { key: "campaign", label: "Campaign", show: (e) => e.campaign_name || e.campaign || dash },
      { key: "link", label: "Link", show: (e) => e.link || dash },
    ];
    return table(
      `Latest events (${t.events.length}), newest first`,
      columns.map((c) => ({ label: c.label })),
      t.events.map((e) => el("tr", { "data-event": e.event_id }, cells(columns, e))),
      { id: "timeline" }
    );
  }

  async function customer() {
    const result = el("div", { id: "customer-result" });
    const input = el("input", { id: "q", name: "q", type: "search", required: true, autocomplete: "off", placeholder: "name@example.org or +33600000000" });
    let searches = 0;
    async function search(query) {
      const seq = ++searches; // only the latest search shows its answer
      result.replaceChildren(el("p", { class: "muted" }, "Searching…"));
      const path = "/customers/" + encodeURIComponent(query);
      try {
        const [card, timeline] = await Promise.all([api(path), api(path + "/timeline")]);
        if (seq !== searches) return;
        if (card === null) {
          result.replaceChildren(el("p", { role: "status", id: "not-found" }, `No customer ${query}.`));
          return;
        }
        result.replaceChildren(customerCard(card), timeline ? timelineTable(timeline) : null);
      } catch (error) {
        result.replaceChildren();
        showError(error);
      }
    }
    const form = el(
      "form",
      { class: "search", role: "search", onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) search(input.value.trim()); } },
      el("label", { for: "q" }, "Email or phone"),
      input,
      el("button", { type: "submit" }, "Search")
    );
    if (pendingSearch) {
      input.value = pendingSearch;
      const q = pendingSearch;
      pendingSearch = null;
      search(q);
    }
    return el("div", {}, heading("Customer"), form, result);
  }

  function openCustomer(address) {
    return el("button", { type: "button", class: "link", onclick: () => { pendingSearch = address; location.hash = "#/customer"; } }, address);
  }

  // -- campaigns --------------------------------------------------------------------------------

  const CAMPAIGN_COLUMNS = [
    { key: "key", label: "Campaign", show: (c) => el("a", { href: "#/campaign/" + encodeURIComponent(c.key) }, c.key) },
    { key: "name", label: "Name", show: (c) => c.name || dash },
    { key: "status", label: "Status", show: (c) => c.status || dash },
    { key: "delivered", label: "Delivered", num: true, show: (c) => num(c.delivered) },
    { key: "open_rate", label: "Open rate", num: true, show: (c) => pct(c.open_rate) },
    { key: "click_rate", label: "Click rate", num: true, show: (c) => pct(c.click_rate) },
    { key: "bounces", label: "Bounces", num: true, show: (c) => num(c.bounces) },
    { key: "spam", label: "Spam", num: true, show: (c) => num(c.spam) },
    { key: "unsubscribes", label: "Unsubscribes", num: true, show: (c) => num(c.unsubscribes) },
  ];
  let campaignSort = { key: "key", descending: false };

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    return typeof a === "number" ? a - b : String(a).localeCompare(String(b));
  }

  async function campaigns() {
    const data = await api("/campaigns");
    const wrap = el("div", {});
    function draw() {
      const { key, descending } = campaignSort;
      const rows = [...data.campaigns].sort((a, b) => (descending ? -1 : 1) * compare(a[key], b[key]));
      const head = CAMPAIGN_COLUMNS.map((c) =>
        el(
          "th",
          { scope: "col", class: c.num ? "num" : null, "aria-sort": c.key === key ? (descending ? "descending" : "ascending") : "none" },
          el("button", { type: "button", class: "sort", "data-sort": c.key, onclick: () => { campaignSort = { key: c.key, descending: c.key === key ? !descending : false }; draw(); wrap.querySelector(`[data-sort="${c.key}"]`).focus(); } },
            c.label, c.key === key ? (descending ? " ▼" : " ▲") : "")
        )
      );
      wrap.replaceChildren(
        el(
          "div",
          { class: "scroll" },
          el(
            "table",
            { id: "campaigns" },
            el("caption", {}, `${rows.length} campaigns and tags; select a column to sort`),
            el("thead", {}, el("tr", {}, head)),
            el("tbody", {}, rows.length ? rows.map((c) => el("tr", { "data-key": c.key }, cells(CAMPAIGN_COLUMNS, c))) : el("tr", {}, el("td", { colspan: CAMPAIGN_COLUMNS.length, class: "muted" }, "No campaign yet")))
          )
        )
      );
    }
    draw();
    return el("div", {}, heading("Campaigns"), wrap);
  }

  async function campaign(key) {
    const c = await api("/campaigns/" + encodeURIComponent(key));
    if (c === null) return el("div", {}, heading("Campaign " + key), el("p", { role: "status" }, `No campaign ${key}.`), el("a", { href: "#/campaigns" }, "All campaigns"));
    return el(
      "div",
      {},
      heading(c.name ? `${c.name} (${c.key})` : `Campaign ${c.key}`),
      el("p", {}, el("a", { href: "#/campaigns" }, "All campaigns")),
      el(
        "section",
        { class: "card", id: "campaign-card" },
        definitions([
          ["Status", c.status ? `${c.status} since ${when(c.status_at)}` : dash, "status"],
          ["Delivered", num(c.delivered), "delivered"],
          ["Opens", num(c.opens), "opens"],
          ["Clicks", num(c.clicks), "clicks"],
          ["Open rate", pct(c.open_rate), "open_rate"],
          ["Click rate", pct(c.click_rate), "click_rate"],
          ["Bounces", num(c.bounces), "bounces"],
          ["Spam reports", num(c.spam), "spam"],
          ["Unsubscribes", num(c.unsubscribes), "unsubscribes"],
        ])
      )
    );
  }

  // -- feeds, paged -----------------------------------------------------------------------------

  function pager(label, hasOlder, hasNewer, older, newer) {
    return el(
      "nav",
      { class: "pager", "aria-label": label + " pages" },
      el("button", { type: "button", onclick: newer, disabled: !hasNewer }, "Newer"),
      el("button", { type: "button", onclick: older, disabled: !hasOlder }, "Older")
    );
  }

  async function suppressions() {
    const data = await api("/suppressions");
    const all = data.suppressions;
    const wrap = el("div", {});
    let page = 0;
    const columns = [
      { key: "address", label: "Address", show: (s) => openCustomer(s.address) },
      { key: "channel", label: "Channel" },
      { key: "reasons", label: "Why", show: (s) => s.reasons.join(", ") + (s.invalid_reason ? ` (${s.invalid_reason})` : "") },
      { key: "since", label: "Since", show: (s) => when(s.since) },
    ];
    function draw() {
      const rows = all.slice(page * PAGE, page * PAGE + PAGE);
      wrap.replaceChildren(
        table(`${all.length} suppressed addresses, page ${page + 1} of ${Math.max(1, Math.ceil(all.length / PAGE))}`, columns, rows.map((s) => el("tr", {}, cells(columns, s))), { id: "suppressions" }),
        el(
          "nav",
          { class: "pager", "aria-label": "Suppressions pages" },
          el("button", { type: "button", disabled: page === 0, onclick: () => { page -= 1; draw(); } }, "Previous"),
          el("button", { type: "button", disabled: (page + 1) * PAGE >= all.length, onclick: () => { page += 1; draw(); } }, "Next")
        )
      );
    }
    draw();
    return el("div", {}, heading("Suppressions"), wrap);
  }

  async function feed(title, path, field, columns) {
    const wrap = el("div", {});
    const cursors = [null]; // the `before` of each page shown so far
    async function load(index) {
      const before = cursors[index];
      const data = await api(`${path}?limit=${PAGE + 1}` + (before ? "&before=" + encodeURIComponent(before) : ""));
      const items = data[field];
      const rows = items.slice(0, PAGE);
      if (items.length > PAGE) cursors[index + 1] = rows[rows.length - 1].at;
      const go = (to) => () => load(to).catch(showError);
      wrap.replaceChildren(
        table(`${title}, page ${index + 1}, newest first`, columns, rows.length ? rows.map((r) => el("tr", {}, cells(columns, r))) : el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, "Nothing here")), { id: field }),
        pager(title, items.length > PAGE, index > 0, go(index + 1), go(index - 1))
      );
    }
    await load(0);
    return el("div", {}, heading(title), wrap);
  }

  const alerts = () =>
    feed("Alerts", "/alerts", "alerts", [
      { key: "at", label: "Time", show: (a) => when(a.at) },
      { key: "kind", label: "Kind" },
      { key: "address", label: "Address", show: (a) => openCustomer(a.address) },
      { key: "campaign", label: "Campaign", show: (a) => a.campaign || dash },
    ]);

  const inbox = () =>
    feed("Support inbox", "/inbox", "messages", [
      { key: "at", label: "Time", show: (m) => when(m.at) },
      { key: "address", label: "From", show: (m) => openCustomer(m.address) },
      { key: "text", label: "Message" },
    ]);

  // -- routing ----------------------------------------------------------------------------------

  const ROUTES = { overview, customer, campaigns, suppressions, alerts, inbox };

  let rendering = 0; // the latest render: an earlier one still waiting for the API must not show its view

  async function render() {
    clearInterval(refresh);
    refresh = null;
    const seq = ++rendering;
    const [name, arg] = location.hash.replace(/^#\/?/, "").split("/");
    const route = ROUTES[name] ? name : name === "campaign" && arg ? "campaigns" : "overview";
    for (const link of document.querySelectorAll("nav a")) {
      if (link.getAttribute("href") === "#/" + route) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (!sessionStorage.getItem(TOKEN_KEY)) {
      askToken("");
      return;
    }
    login.hidden = true;
    $("forget").hidden = false;
    const draw = name === "campaign" && arg ? () => campaign(decodeURIComponent(arg)) : ROUTES[route];
    try {
      const node = await draw();
      if (seq !== rendering) return;
      say("");
      view.replaceChildren(node);
      document.title = `${node.querySelector("h2").textContent} · tajo-events`;
      if (route === "overview") {
        refresh = setInterval(() => {
          if (document.hidden) return;
          draw().then(
            (n) => { if (seq === rendering) { say(""); view.replaceChildren(n); } },
            (error) => { if (seq === rendering) showError(error); }
          );
        }, REFRESH_MS);
      }
    } catch (error) {
      if (seq !== rendering) return;
      view.replaceChildren();
      showError(error);
    }
  }

  window.addEventListener("hashchange", () => {
    render().then(() => {
      const h2 = view.querySelector("h2");
      if (h2) h2.focus();
    });
  });
  render();
})();
