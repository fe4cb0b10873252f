/* ALİM chat widget. Embed it with
 *   <script>window.AlimConfig = { key: "alim_pk_…", position: "bottom-right", greeting: "Salam!",
 *     language: "az", theme: { primaryColor: "#2e7d32" } };</script>
 *   <script src="https://alim.example/widget.js" async></script>
 * Optional: apiBase (default: where this script came from); stallSeconds (default 45: a stream
 * silent this long, although the server sends a heartbeat every 15 s, is asked for again); and,
 * for logged-in users, user: { id, hash } with hash = HMAC-SHA256(identity secret, id) computed
 * on your server.
 * Everything lives in a shadow root; API text is only ever set with textContent. */
(() => {
  "use strict";
  if (window.__alimWidget) return;
  window.__alimWidget = true;
  const cfg = window.AlimConfig || {};
  const script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  const base = String(cfg.apiBase || (script ? new URL(script.src, location.href).origin : location.origin)).replace(/\/+$/, "");
  const API = base + "/api/v1";
  const TEXT = {
    az: {
      open: "ALİM söhbətini aç", close: "Söhbəti bağla", title: "ALİM — aqronom köməkçisi",
      input: "Sualınızı yazın", send: "Göndər", greeting: "Salam! Təsərrüfatınızla bağlı sualınızı yazın.",
      sources: "Mənbələr", escalated: "Sualınız aqronoma ötürüldü. Cavabı burada görəcəksiniz.",
      error: "Söhbət hazırda mümkün deyil. Bir az sonra yenidən cəhd edin.", busy: "Cavab yazılır…",
      reconnecting: "Bağlantı kəsildi, yenidən qoşulur…",
      up: "Cavab faydalı oldu", down: "Cavab faydalı olmadı", thanks: "Rəyiniz üçün təşəkkürlər!",
      you: "Siz", bot: "ALİM", human: "Aqronom", fresh: "Yeni söhbət",
    },
    en: {
      open: "Open the ALİM chat", close: "Close the chat", title: "ALİM — farming assistant",
      input: "Type your question", send: "Send", greeting: "Hello! Ask me anything about your farm.",
      sources: "Sources", escalated: "Your question was passed to an agronomist. The reply will appear here.",
      error: "The chat is not available right now. Please try again later.", busy: "Answering…",
      reconnecting: "Connection lost, reconnecting…",
      up: "The answer helped", down: "The answer did not help", thanks: "Thank you for your feedback!",
      you: "You", bot: "ALİM", human: "Agronomist", fresh: "New chat",
    },
    ru: {
      open: "Открыть чат ALİM", close: "Закрыть чат", title: "ALİM — помощник агронома",
      input: "Введите вопрос", send: "Отправить", greeting: "Здравствуйте! Задайте вопрос о вашем хозяйстве.",
      sources: "Источники", escalated: "Вопрос передан агроному. Ответ появится здесь.",
      error: "Чат сейчас недоступен. Попробуйте позже.", busy: "Отвечаю…",
      reconnecting: "Связь прервалась, переподключаюсь…",
      up: "Ответ помог", down: "Ответ не помог", thanks: "Спасибо за отзыв!",
      you: "Вы", bot: "ALİM", human: "Агроном", fresh: "Новый чат",
    },
  };
  const lang = TEXT[cfg.language] ? cfg.language : "az";
  const t = TEXT[lang];
  const user = cfg.user && cfg.user.id && cfg.user.hash ? cfg.user : null;
  const storeKey = "alim-widget:" + base + ":" + String(cfg.key || "").slice(0, 16) + (user ? ":" + user.id : "");

  const STYLE = `
:host{all:initial;--p:#2e7d32;position:fixed;bottom:20px;z-index:2147483000;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b}
:host(.right){right:20px}:host(.left){left:20px}
*{box-sizing:border-box}
.bubble{width:60px;height:60px;border-radius:50%;border:0;background:var(--p);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.3);display:grid;place-items:center}
.bubble svg{width:28px;height:28px;fill:currentColor}
button:focus-visible,textarea:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}
.panel{position:absolute;bottom:76px;width:370px;max-width:calc(100vw - 40px);height:560px;max-height:calc(100vh - 110px);background:#fff;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.3);display:flex;flex-direction:column;overflow:hidden}
:host(.right) .panel{right:0}:host(.left) .panel{left:0}
.panel[hidden]{display:none}
header{background:var(--p);color:#fff;display:flex;align-items:center;gap:6px;padding:10px 12px}
h2{font-size:16px;margin:0;flex:1}
header button{background:transparent;color:#fff;border:1px solid rgba(255,255,255,.6);border-radius:8px;padding:4px 8px;cursor:pointer;font:inherit;font-size:13px}
.log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f6f7f6}
.msg{max-width:88%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}
.user{align-self:flex-end;background:var(--p);color:#fff}
.assistant,.human{align-self:flex-start;background:#fff;border:1px solid #dde3dd}
.human{border-color:#8d6e00;background:#fff8e1}
.who{display:block;font-size:12px;font-weight:600;opacity:.75;margin-bottom:2px}
.msg[data-state=streaming] .text:empty::after{content:attr(data-busy);opacity:.6}
.sources{margin:8px 0 0;padding:6px 0 0 18px;border-top:1px solid #e3e8e3;font-size:13px;color:#35533a}
.sources-title{font-size:12px;font-weight:600;margin-top:6px}
.escalated{margin-top:8px;padding:7px 9px;border-radius:8px;background:#fff3cd;border:1px solid #e0b000;font-size:14px}
.thumbs{display:flex;gap:6px;margin-top:6px}
.thumbs button{border:1px solid #cfd8cf;background:#fff;border-radius:8px;padding:2px 8px;cursor:pointer;font-size:15px}
.thumbs button[aria-pressed=true]{background:var(--p);color:#fff}
.status{margin:0;padding:8px 12px;background:#fdecea;color:#8a1c12;font-size:14px}
.status:empty{display:none}
form{display:flex;gap:6px;padding:10px;border-top:1px solid #e3e8e3;background:#fff}
textarea{flex:1;resize:none;height:44px;padding:10px;border:1px solid #bfc8bf;border-radius:10px;font:inherit}
.send{border:0;border-radius:10px;background:var(--p);color:#fff;padding:0 14px;cursor:pointer;font:inherit}
.send:disabled{opacity:.5;cursor:default}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:480px){:host(.open) .bubble{display:none}.panel{position:fixed;inset:0;width:100vw;max-width:none;height:100%;max-height:none;border-radius:0;bottom:0}}
@media (prefers-reduced-motion:no-preference){.bubble{transition:transform .15s}.bubble:hover{transform:scale(1.06)}}`;

  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  };

  // ---------------------------------------------------------------- state (localStorage)
  let state = {};
  try { state = JSON.parse(localStorage.getItem(storeKey) || "{}") || {}; } catch (_) { state = {}; }
  const save = () => { try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (_) { /* private mode */ } };

  // ---------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, code, detail) { super(detail || code); this.status = status; this.code = code; }
  }
  async function request(method, path, body, extra, signal) {
    const headers = { "X-API-Key": String(cfg.key || ""), ...(extra || {}) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), mode: "cors", credentials: "omit", signal });
    if (!response.ok) {
      let err = {};
      try { err = await response.json(); } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, err.code || "http_" + response.status, err.detail);
    }
    return response;
  }
  async function identity() {
    if (user) return { uid: user.id, headers: { "X-User-Id": user.id, "X-User-Hash": user.hash } };
    if (!state.token) {
      const v = await (await request("POST", "/widget/visitor")).json();
      state = { token: v.visitor_token, uid: v.user_id };
      save();
    }
    return { uid: state.uid, headers: { "X-Visitor-Token": state.token } };
  }
  async function call(method, path, body, extra, signal) {
    for (let attempt = 0; ; attempt++) {
      const who = await identity();
      const payload = body === undefined ? undefined : { ...body, user_id: who.uid };
      try {
        return await request(method, path, payload, { ...who.headers, ...(extra || {}) }, signal);
      } catch (e) {
        if (attempt || user || !(e instanceof ApiError) || e.code !== "invalid_visitor_token") throw e;
        state = {}; save(); // the server no longer knows this token: start as a new visitor
      }
    }
  }
  // Waits before asking again for a stream the network cut (a phone on a weak rural network);
  // a phone that says it is offline is waited for, up to OFFLINE_SECONDS, without using them up.
  // A try that brought new events starts the count again. A stream silent for STALL_SECONDS (the
  // server's heartbeat comes every 15 s) is a connection the network left hanging: cut and resent.
  const RETRY_SECONDS = [1, 2, 4];
  const OFFLINE_SECONDS = 120;
  const STALL_SECONDS = Number(cfg.stallSeconds) > 0 ? Number(cfg.stallSeconds) : 45;
  const watchdog = () => {
    const controller = new AbortController();
    let timer;
    const feed = () => { clearTimeout(timer); timer = setTimeout(() => controller.abort(), STALL_SECONDS * 1000); };
    feed();
    return { signal: controller.signal, feed, stop: () => clearTimeout(timer) };
  };
  const backOnline = () => new Promise((resolve) => {
    const done = (back) => { clearTimeout(timer); window.removeEventListener("online", on); resolve(back); };
    const on = () => done(true);
    const timer = setTimeout(() => done(navigator.onLine), OFFLINE_SECONDS * 1000);
    window.addEventListener("online", on);
  });
  const dropped = (e) => e instanceof TypeError || (e instanceof ApiError && e.status >= 500);
  const newKey = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  async function* events(response, onChunk) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "", event = "message", data = [], id = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onChunk();
      buffer += value;
      let nl;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        if (buffer[nl] === "\r" && nl === buffer.length - 1) break; // a CRLF split across chunks
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          if (data.length) yield { event, data: data.join("\n"), id };
          event = "message"; data = [];
        } else if (!line.startsWith(":")) {
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          let val = i < 0 ? "" : line.slice(i + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
          else if (field === "id" && !val.includes("\0")) id = val;
        }
      }
    }
  }

  // ---------------------------------------------------------------- DOM
  const host = el("div", { id: "alim-widget", "data-state": "idle" });
  host.className = cfg.position === "bottom-left" ? "left" : "right";
  const color = cfg.theme && cfg.theme.primaryColor;
  if (color && window.CSS && CSS.supports("color", color)) host.style.setProperty("--p", color);
  const root = host.attachShadow({ mode: "open" });
  if ("adoptedStyleSheets" in root && window.CSSStyleSheet && "replaceSync" in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
    root.adoptedStyleSheets = [sheet];
  } else {
    root.appendChild(el("style", {}, STYLE));
  }
  const bubble = el("button", { class: "bubble", type: "button", "aria-label": t.open, "aria-expanded": "false", "aria-controls": "alim-panel" });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 2-2zm3 6v2h10V9H7zm0 4v2h7v-2H7z");
  svg.appendChild(path);
  bubble.appendChild(svg);
  const panel = el("section", { class: "panel", id: "alim-panel", role: "dialog", "aria-labelledby": "alim-title", lang });
  panel.hidden = true;
  const header = el("header");
  const fresh = el("button", { type: "button", class: "new" }, t.fresh);
  const close = el("button", { type: "button", class: "close", "aria-label": t.close }, "✕");
  header.append(el("h2", { id: "alim-title" }, t.title), fresh, close);
  const log = el("div", { class: "log", role: "log", "aria-live": "off", "aria-label": t.title, tabindex: "0" });
  const status = el("p", { class: "status", role: "alert" });
  const live = el("div", { class: "sr", "aria-live": "polite", "aria-atomic": "true" });
  const form = el("form");
  const input = el("textarea", { id: "alim-input", rows: "1", maxlength: "4000", placeholder: t.input });
  const label = el("label", { for: "alim-input", class: "sr" }, t.input);
  const send = el("button", { type: "submit", class: "send" }, t.send);
  form.append(label, input, send);
  panel.append(header, log, status, live, form);
  root.append(panel, bubble);

  const scrollDown = () => { log.scrollTop = log.scrollHeight; };
  function addMessage(role, content) {
    const who = role === "user" ? t.you : role === "human" ? t.human : t.bot;
    const msg = el("div", { class: "msg " + role });
    msg.append(el("span", { class: "who" }, who), el("span", { class: "text", "data-busy": t.busy }, content || ""));
    log.appendChild(msg);
    scrollDown();
    return msg;
  }
  function showSources(msg, sources) {
    if (!sources || !sources.length) return;
    const list = el("ul", { class: "sources", "aria-label": t.sources });
    for (const s of sources) list.appendChild(el("li", {}, s.title || s.id));
    msg.append(el("div", { class: "sources-title", "aria-hidden": "true" }, t.sources), list);
  }
  function showEscalated(msg) {
    msg.dataset.state = "escalated";
    host.dataset.state = "escalated";
    msg.appendChild(el("div", { class: "escalated", role: "status" }, t.escalated));
  }
  function showThumbs(msg, threadId, runId) {
    const box = el("div", { class: "thumbs" });
    const rate = async (button, score) => {
      for (const b of box.querySelectorAll("button")) { b.disabled = true; b.setAttribute("aria-pressed", String(b === button)); }
      try {
        await call("POST", "/threads/" + encodeURIComponent(threadId) + "/feedback", { run_id: runId, score });
        live.textContent = t.thanks;
      } catch (e) { fail(e); }
    };
    for (const [text, name, score] of [["✓", t.up, 5], ["✗", t.down, 1]]) {
      const b = el("button", { type: "button", "aria-label": name, "aria-pressed": "false" }, text);
      b.addEventListener("click", () => rate(b, score));
      box.appendChild(b);
    }
    msg.appendChild(box);
  }
  function fail(e) {
    const code = e instanceof ApiError ? " (" + e.code + ")" : "";
    status.textContent = t.error + code;
    host.dataset.state = "error";
  }
  function greet() {
    if (!log.childElementCount) addMessage("assistant", cfg.greeting || t.greeting).classList.add("greeting");
  }

  let loaded = false;
  async function load() {
    if (loaded) return;
    loaded = true;
    try {
      await identity();
      if (state.thread) {
        const thread = await (await call("GET", "/threads/" + encodeURIComponent(state.thread) + "?user_id=" + encodeURIComponent(user ? user.id : state.uid))).json();
        log.replaceChildren();
        let last = null;
        for (const m of thread.messages) {
          last = addMessage(m.role === "user" ? "user" : m.from_human ? "human" : "assistant", m.content);
          if (m.role !== "user") showSources(last, m.sources);
        }
        if (thread.status === "awaiting_human" && last) showEscalated(last);
      }
      status.textContent = "";
      host.dataset.state = "ready";
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) { delete state.thread; save(); host.dataset.state = "ready"; }
      else { loaded = false; fail(e); }
    }
    greet();
  }

  let busy = false;
  async function ask(message) {
    busy = true;
    send.disabled = true;
    status.textContent = "";
    addMessage("user", message);
    const msg = addMessage("assistant", "");
    const text = msg.querySelector(".text");
    msg.dataset.state = "streaming";
    msg.setAttribute("aria-busy", "true");
    let runId = null, threadId = state.thread, escalated = false, failed = false;
    try {
      const body = { message, language: "auto" };
      if (threadId) body.thread_id = threadId;
      // One key per question: a stream that the network cut is asked for again with the key and
      // the last event it delivered, and the server goes on with the same run (no second turn).
      const resend = { "Idempotency-Key": newKey() };
      for (let tries = 0; ; ) {
        let ended = false, progressed = false;
        const silence = watchdog();
        try {
          const response = await call("POST", "/graph/stream", body, resend, silence.signal);
          status.textContent = "";
          for await (const ev of events(response, silence.feed)) {
            if (ev.id && ev.id !== resend["Last-Event-ID"]) {
              resend["Last-Event-ID"] = ev.id;
              progressed = true;
            }
            if (ev.event === "metadata") {
              const m = JSON.parse(ev.data);
              runId = m.run_id;
              threadId = m.thread_id;
              state.thread = threadId;
              save();
            } else if (ev.event === "token") {
              text.textContent += ev.data;
              scrollDown();
            } else if (ev.event === "sources") {
              const s = JSON.parse(ev.data);
              showSources(msg, s.sources);
              escalated = Boolean(s.escalated) || s.route === "human";
            } else if (ev.event === "error") {
              const e = JSON.parse(ev.data);
              failed = true;
              fail(new ApiError(0, e.code, e.detail));
            } else if (ev.event === "done") {
              ended = true;
              break;
            }
          }
        } catch (e) {
          if (!dropped(e) && !silence.signal.aborted) throw e;
        } finally {
          silence.stop();
        }
        if (ended) break;
        // The stream ended before `done`: a dropped connection, not an answer.
        status.textContent = t.reconnecting;
        if (progressed) tries = 0;
        if (!navigator.onLine) {
          if (!(await backOnline())) throw new ApiError(0, "stream_interrupted");
          continue;
        }
        if (tries === RETRY_SECONDS.length) throw new ApiError(0, "stream_interrupted");
        await new Promise((resolve) => setTimeout(resolve, RETRY_SECONDS[tries++] * 1000));
      }
      if (escalated) showEscalated(msg);
      else if (!failed) msg.dataset.state = "done";
      if (!escalated && !failed && runId && threadId) showThumbs(msg, threadId, runId);
      live.textContent = text.textContent + (escalated ? " " + t.escalated : "");
      if (!failed && host.dataset.state !== "escalated") host.dataset.state = "ready";
    } catch (e) {
      msg.dataset.state = "error";
      fail(e);
    } finally {
      msg.removeAttribute("aria-busy");
      busy = false;
      send.disabled = false;
      scrollDown();
    }
  }

  function toggle(open) {
    panel.hidden = !open;
    bubble.setAttribute("aria-expanded", String(open));
    bubble.setAttribute("aria-label", open ? t.close : t.open);
    host.classList.toggle("open", open);
    if (open) { load(); input.focus(); } else { bubble.focus(); }
  }
  bubble.addEventListener("click", () => toggle(panel.hidden));
  close.addEventListener("click", () => toggle(false));
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") toggle(false); });
  fresh.addEventListener("click", () => {
    delete state.thread;
    save();
    log.replaceChildren();
    status.textContent = "";
    host.dataset.state = "ready";
    greet();
    input.focus();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const message = input.value.trim();
    if (!message || busy) return;
    input.value = "";
    ask(message);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });

  const mount = () => document.body.appendChild(host);
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
