// ALİM's agronomist inbox. Every text from the API (what farmers wrote above all) is put on the
// page with textContent, never as HTML; the page's CSP allows no inline script either.
"use strict";
const API = "/api/v1";
const $ = (id) => document.getElementById(id);

const T = {
  az: {
    title: "aqronom qutusu", language: "Dil", signOut: "Çıxış", signInTitle: "Daxil olun",
    apiKey: "Agent API açarı", agentName: "Adınız", signIn: "Daxil ol",
    allReasons: "Bütün səbəblər", allLanguages: "Bütün dillər", region: "Region",
    low_confidence: "Aşağı etibar", user_requested: "Fermer istədi", kept_by_expert: "Sizdə qalan",
    empty: "Növbədə sual yoxdur.", back: "← Növbə", claim: "Götür", release: "Növbəyə qaytar",
    conversation: "Söhbət", passages: "ALİM-in tapdığı mətnlər", reply: "Cavab (ALİM-in qaralaması)",
    keep: "Növbəti mesaj da mənə gəlsin (ALİM-ə yox)", send: "Cavabı göndər",
    duplicate: "Təkrar", spam: "Spam", not_farming: "Kənd təsərrüfatı deyil",
    close: "Cavabsız bağla", waiting: "gözləyir", takenBy: "Götürüb: ", mine: "Sizdədir",
    free: "Heç kim götürməyib", confidence: "etibar", route: "marşrut", crops: "bitkilər",
    farmer: "Fermer", alim: "ALİM", expert: "Aqronom", whileWaiting: "gözləyərkən yazıb",
    live: "Canlı yenilənir", offline: "Bağlantı kəsildi, yenidən qoşulur…",
    claimedByOther: "Bu sualı başqa aqronom götürüb: ", sent: "Cavab göndərildi.",
    closed: "Bağlandı.", badKey: "Açar qəbul olunmadı və ya agent icazəsi yoxdur.",
    noDraft: "", min: "dəq", hour: "saat", day: "gün", score: "bal",
  },
  en: {
    title: "agronomist inbox", language: "Language", signOut: "Sign out", signInTitle: "Sign in",
    apiKey: "Agent API key", agentName: "Your name", signIn: "Sign in",
    allReasons: "All reasons", allLanguages: "All languages", region: "Region",
    low_confidence: "Low confidence", user_requested: "Farmer asked", kept_by_expert: "Kept by you",
    empty: "No questions in the queue.", back: "← Queue", claim: "Claim", release: "Release",
    conversation: "Conversation", passages: "Passages ALİM found", reply: "Reply (ALİM's draft)",
    keep: "Keep the next message with me (not ALİM)", send: "Send answer",
    duplicate: "Duplicate", spam: "Spam", not_farming: "Not farming",
    close: "Close without answer", waiting: "waiting", takenBy: "Taken by ", mine: "Yours",
    free: "Unclaimed", confidence: "confidence", route: "route", crops: "crops",
    farmer: "Farmer", alim: "ALİM", expert: "Agronomist", whileWaiting: "sent while waiting",
    live: "Live", offline: "Connection lost, reconnecting…",
    claimedByOther: "Another agronomist has taken this question: ", sent: "Answer sent.",
    closed: "Closed.", badKey: "The key was refused or lacks the agent scope.",
    noDraft: "", min: "min", hour: "h", day: "d", score: "score",
  },
  ru: {
    title: "входящие агронома", language: "Язык", signOut: "Выйти", signInTitle: "Вход",
    apiKey: "Ключ агента", agentName: "Ваше имя", signIn: "Войти",
    allReasons: "Все причины", allLanguages: "Все языки", region: "Регион",
    low_confidence: "Низкая уверенность", user_requested: "Фермер попросил", kept_by_expert: "Оставлено вам",
    empty: "В очереди нет вопросов.", back: "← Очередь", claim: "Взять", release: "Вернуть в очередь",
    conversation: "Переписка", passages: "Найденные АЛИМ фрагменты", reply: "Ответ (черновик АЛИМ)",
    keep: "Следующее сообщение — мне (не АЛИМ)", send: "Отправить ответ",
    duplicate: "Дубликат", spam: "Спам", not_farming: "Не о сельском хозяйстве",
    close: "Закрыть без ответа", waiting: "ждёт", takenBy: "Взял(а): ", mine: "У вас",
    free: "Никто не взял", confidence: "уверенность", route: "маршрут", crops: "культуры",
    farmer: "Фермер", alim: "АЛИМ", expert: "Агроном", whileWaiting: "написал(а) во время ожидания",
    live: "Обновляется онлайн", offline: "Связь потеряна, переподключение…",
    claimedByOther: "Этот вопрос взял другой агроном: ", sent: "Ответ отправлен.",
    closed: "Закрыто.", badKey: "Ключ не принят или у него нет роли agent.",
    noDraft: "", min: "мин", hour: "ч", day: "д", score: "балл",
  },
};

let lang = sessionStorage.getItem("inbox.lang") || "az";
let session = null; // {key, name, partner, timeout}
const items = new Map(); // escalation id → escalation (open ones)
let selected = null; // the escalation id shown in detail
let stream = null; // AbortController of the event stream
let shown = null; // the detail's data as loaded (re-rendered when the language changes)
let liveKey = "live";

const t = (k) => (T[lang] && T[lang][k]) || T.en[k] || k;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function translate() {
  document.documentElement.lang = lang;
  $("lang").value = lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  for (const node of document.querySelectorAll("[data-tp]")) node.placeholder = t(node.dataset.tp);
  render();
  $("live").textContent = session ? t(liveKey) : "";
  if (shown) renderDetail(shown, false);
}

function headers(extra) {
  return Object.assign({ "X-API-Key": session.key, "Content-Type": "application/json" }, extra || {});
}

async function call(method, path, body) {
  const r = await fetch(API + path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) { const e = new Error(data.detail || r.statusText); e.code = data.code; e.status = r.status; throw e; }
  return data;
}

function waited(since) {
  const s = Math.max(0, (Date.now() - Date.parse(since)) / 1000);
  if (s < 3600) return Math.floor(s / 60) + " " + t("min");
  if (s < 86400) return Math.floor(s / 3600) + " " + t("hour");
  return Math.floor(s / 86400) + " " + t("day");
}

function tag(text, cls) { return el("span", "tag" + (cls ? " " + cls : ""), text); }

function filtered() {
  const reason = $("fReason").value, language = $("fLanguage").value;
  const region = $("fRegion").value.trim().toLowerCase();
  return [...items.values()]
    .filter((e) => e.status === "open")
    .filter((e) => !reason || e.reason === reason)
    .filter((e) => !language || e.language === language)
    .filter((e) => !region || (e.region || "").toLowerCase().includes(region))
    .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0));
}

function claimTag(e) {
  if (!e.claimed_by) return null;
  return e.claimed_by === session.name ? tag(t("mine"), "mine") : tag(t("takenBy") + e.claimed_by, "taken");
}

function render() {
  if (!session) return;
  const list = $("queue");
  list.textContent = "";
  const visible = filtered();
  $("empty").hidden = visible.length > 0;
  for (const e of visible) {
    const li = el("li");
    li.dataset.id = e.id;
    if (e.id === selected) li.classList.add("selected");
    if (e.claimed_by && e.claimed_by !== session.name) li.classList.add("taken");
    li.appendChild(el("div", "q", e.question.length > 160 ? e.question.slice(0, 160) + "…" : e.question));
    const tags = el("div", "tags");
    tags.appendChild(tag(t("waiting") + " " + waited(e.created_at), "wait"));
    tags.appendChild(tag(t(e.reason)));
    if (e.confidence !== null && e.confidence !== undefined) tags.appendChild(tag(t("confidence") + " " + e.confidence.toFixed(2)));
    if (e.language) tags.appendChild(tag(e.language));
    if (e.route) tags.appendChild(tag(t("route") + ": " + e.route));
    if (e.region) tags.appendChild(tag(e.region));
    if (e.crops && e.crops.length) tags.appendChild(tag(t("crops") + ": " + e.crops.join(", ")));
    if (e.followups && e.followups.length) tags.appendChild(tag("+" + e.followups.length));
    const claim = claimTag(e);
    if (claim) { claim.classList.add("claimTag"); tags.appendChild(claim); }
    li.appendChild(tags);
    li.addEventListener("click", () => openDetail(e.id));
    list.appendChild(li);
  }
}

function upsert(e) {
  if (e.status === "open") items.set(e.id, e);
  else items.delete(e.id);
  render();
  if (e.id === selected) {
    if (shown && shown.escalation.id === e.id) shown.escalation = e;
    showDetailState(e);
  }
}

async function loadQueue() {
  const data = await call("GET", "/escalations/queue");
  items.clear();
  for (const e of data.escalations) items.set(e.id, e);
  render();
}

// A text/event-stream body, parsed incrementally (the SSE spec's line rules).
async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", event = "message", data = [], id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
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

// The live queue: fetch-streaming (EventSource cannot send X-API-Key), resumed after the last
// event id when the connection drops.
async function follow() {
  const controller = new AbortController();
  stream = controller;
  let lastId = null, delay = 500;
  while (!controller.signal.aborted) {
    try {
      const h = headers();
      if (lastId) h["Last-Event-ID"] = lastId;
      const r = await fetch(API + "/escalations/events", { headers: h, signal: controller.signal });
      if (!r.ok) throw new Error(String(r.status));
      liveKey = "live";
      $("live").textContent = t(liveKey);
      delay = 500;
      for await (const ev of sseEvents(r)) {
        if (ev.id) lastId = ev.id;
        if (ev.event === "escalation") upsert(JSON.parse(ev.data));
      }
    } catch (err) {
      if (controller.signal.aborted) return;
    }
    liveKey = "offline";
    $("live").textContent = t(liveKey);
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 8000);
  }
}

function roleLabel(m) {
  if (m.role === "user") return t("farmer");
  return m.from_human ? t("expert") : t("alim");
}

function showDetailState(e) {
  if (!e) {
    $("claimState").textContent = "";
    for (const id of ["claim", "release", "answer", "close"]) $(id).disabled = true;
    return;
  }
  if (e.status !== "open") {
    $("claimState").textContent = t(e.status === "closed" ? "closed" : "sent");
    for (const id of ["claim", "release", "answer", "close"]) $(id).disabled = true;
    return;
  }
  const mine = e.claimed_by === session.name;
  const other = e.claimed_by && !mine;
  $("claimState").textContent = other ? t("takenBy") + e.claimed_by : mine ? t("mine") : t("free");
  $("claimState").classList.toggle("error", Boolean(other));
  $("detail").dataset.claimedBy = e.claimed_by || "";
  $("claim").disabled = mine;
  $("release").disabled = !mine;
  $("answer").disabled = Boolean(other);
  $("close").disabled = Boolean(other);
}

async function openDetail(id) {
  selected = id;
  $("actionError").textContent = "";
  $("done").textContent = "";
  $("app").classList.add("showing");
  $("detail").hidden = false;
  render();
  let data;
  try { data = await call("GET", "/escalations/" + encodeURIComponent(id)); }
  catch (err) { $("actionError").textContent = err.message; return; }
  if (selected !== id) return;
  shown = data;
  renderDetail(data, true);
}

function renderDetail(data, fresh) {
  const e = data.escalation, id = e.id;
  $("detail").dataset.id = id;
  const meta = $("meta");
  meta.textContent = "";
  meta.appendChild(tag(t("waiting") + " " + waited(e.created_at), "wait"));
  meta.appendChild(tag(t(e.reason)));
  if (e.confidence !== null) meta.appendChild(tag(t("confidence") + " " + e.confidence.toFixed(2)));
  for (const v of [e.language, e.route && t("route") + ": " + e.route, data.profile.region]) if (v) meta.appendChild(tag(v));
  if (data.profile.crops && data.profile.crops.length) meta.appendChild(tag(t("crops") + ": " + data.profile.crops.join(", ")));
  const convo = $("conversation");
  convo.textContent = "";
  const waiting = new Set(e.followups);
  let seenQuestion = false;
  for (const m of data.messages) {
    const div = el("div", "msg " + m.role + (m.from_human ? " human" : ""));
    let label = roleLabel(m);
    if (m.role === "user" && seenQuestion && waiting.has(m.content)) { div.classList.add("waiting"); label += " · " + t("whileWaiting"); }
    if (m.role === "user" && m.content === e.question) seenQuestion = true;
    div.appendChild(el("span", "who", label));
    div.appendChild(document.createTextNode(m.content));
    convo.appendChild(div);
  }
  const passages = $("passages");
  passages.textContent = "";
  for (const p of data.passages) {
    const li = el("li");
    li.appendChild(el("strong", "", p.title));
    li.appendChild(document.createTextNode(" (" + t("score") + " " + p.score.toFixed(3) + ")"));
    if (p.text) li.appendChild(el("div", "ptext", p.text));
    passages.appendChild(li);
  }
  if (fresh) {
    $("draft").value = data.draft;
    $("keepWithMe").checked = false;
  }
  showDetailState(items.get(id) || e);
}

async function act(path, body, message) {
  $("actionError").textContent = "";
  $("done").textContent = "";
  try {
    const e = await call("POST", "/escalations/" + encodeURIComponent(selected) + path, body);
    upsert(e);
    if (message) $("done").textContent = t(message);
    return e;
  } catch (err) {
    if (err.code === "escalation_claimed") {
      $("actionError").textContent = t("claimedByOther") + err.message;
      $("actionError").dataset.code = err.code;
      const fresh = await call("GET", "/escalations/" + encodeURIComponent(selected)).catch(() => null);
      if (fresh) upsert(fresh.escalation);
    } else {
      $("actionError").textContent = (err.code ? err.code + ": " : "") + err.message;
    }
    return null;
  }
}

async function signIn(key, name) {
  session = { key, name };
  try {
    const me = await call("GET", "/inbox/session");
    session.partner = me.partner;
  } catch (err) {
    session = null;
    $("signInError").textContent = t("badKey");
    return;
  }
  sessionStorage.setItem("inbox.key", key);
  sessionStorage.setItem("inbox.name", name);
  $("who").textContent = name + " · " + session.partner;
  $("signIn").hidden = true;
  $("app").hidden = false;
  $("signOut").hidden = false;
  await loadQueue();
  follow();
}

function signOut() {
  if (stream) stream.abort();
  sessionStorage.removeItem("inbox.key");
  session = null; selected = null; shown = null; items.clear();
  $("app").hidden = true; $("signIn").hidden = false; $("signOut").hidden = true;
  $("who").textContent = "";
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  $("lang").addEventListener("change", () => { lang = $("lang").value; sessionStorage.setItem("inbox.lang", lang); translate(); });
  $("signIn").addEventListener("submit", (ev) => {
    ev.preventDefault();
    $("signInError").textContent = "";
    signIn($("apiKey").value.trim(), $("agentName").value.trim());
  });
  $("signOut").addEventListener("click", signOut);
  for (const id of ["fReason", "fLanguage", "fRegion"]) $(id).addEventListener("input", render);
  $("back").addEventListener("click", () => { selected = null; shown = null; $("detail").hidden = true; $("app").classList.remove("showing"); render(); });
  $("claim").addEventListener("click", () => act("/claim", { agent_id: session.name }));
  $("release").addEventListener("click", () => act("/release", { agent_id: session.name }));
  $("answer").addEventListener("click", () => {
    const answer = $("draft").value.trim();
    if (!answer) return;
    act("/reply", { answer, agent_id: session.name, next: $("keepWithMe").checked ? "expert" : "alim" }, "sent");
  });
  $("close").addEventListener("click", () => act("/close", { agent_id: session.name, reason: $("closeReason").value }, "closed"));
  setInterval(() => { if (session) loadQueue().catch(() => {}); }, 30000); // lapsed claims, waiting times
  const key = sessionStorage.getItem("inbox.key"), name = sessionStorage.getItem("inbox.name");
  if (key && name) { $("apiKey").value = key; $("agentName").value = name; signIn(key, name); }
});
