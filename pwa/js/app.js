// The field app's entry point: routes, the always-visible sync status, updates and sync triggers.

import { h, clear } from "./dom.js";
import { t, ageText, clockText } from "./messages.js";
import { STORES, getAll, getMeta, setMeta, deleteMeta } from "./db.js";
import { PROTOCOL_VERSION, UNSENT_WARNING_DAYS } from "./protocol.js";
import { syncNow, onSyncChange, requestBackgroundSync, nextAttemptAt, sendPendingSignOut, SYNC_BASE } from "./sync.js";
import { showJoin, showHome, showDraft, showDeal, showMine, showAttention, showSettings, startDraft, startCorrection } from "./screens.js";

const UNSENT_WARNING_MS = UNSENT_WARNING_DAYS * 24 * 3600 * 1000;
const TIMER_MS = 30000;
const IDLE_PULL_MS = 5 * 60000;

const main = document.getElementById("main");
const statusBar = document.getElementById("status");
const banner = document.getElementById("banner");
const nav = document.getElementById("nav");

const app = {
  version: document.documentElement.dataset.version || "",
  person: null,
  mayJoinAgain: false,
  areas: [],
  registration: null,
  updateNote: "",
  flashText: "",
  flashKeep: 0,
  go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  // A message that stays through redraws until the person navigates again.
  flash(text) {
    this.flashText = text;
    this.flashKeep = 1;
  },
  async join(code, deviceName, displayName = "") {
    if (!code) return t("join_failed", { message: t("invite_code") });
    // Whoever signed out here before is signed out on the server first (a shared phone).
    await sendPendingSignOut();
    let response;
    try {
      // No name typed: the server names the device readably ("Android phone, joined 3 Dec").
      response = await fetch(`${SYNC_BASE}/enrol`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept-Language": document.documentElement.lang },
        body: JSON.stringify({ protocol: PROTOCOL_VERSION, code, device_name: deviceName, display_name: displayName }),
      });
    } catch (error) {
      return t("join_offline");
    }
    const body = await response.json().catch(() => ({}));
    if (response.status !== 201) return t("join_failed", { message: body.message || response.status });
    // The token lives only in the meta store, never inside a queued item.
    await setMeta("token", body.token);
    await setMeta("device_id", body.device_id);
    await setMeta("device_name", body.device_name || deviceName);
    await setMeta("person", body.person);
    await setMeta("areas", body.areas);
    await deleteMeta("blocked");
    await deleteMeta("signed_out");
    await askPersistence();
    await loadIdentity();
    this.go("#/");
    await syncNow({ force: true, version: this.version });
    return "";
  },
  queued() {
    // Count the new item at once: otherwise the status line says "nothing waiting" until the sync ends.
    drawStatus({ status: "running" });
    requestBackgroundSync(this.registration);
    syncNow({ force: true, version: this.version });
  },
  async signedOut(told = true) {
    this.person = null;
    this.flash(told ? t("signed_out") : `${t("signed_out")} ${t("sign_out_pending")}`);
    this.go("#/join");
  },
};

async function askPersistence() {
  if (!navigator.storage || !navigator.storage.persist) {
    await setMeta("persisted", null);
    return;
  }
  const already = await navigator.storage.persisted();
  await setMeta("persisted", already || (await navigator.storage.persist()));
}

async function loadIdentity() {
  const token = await getMeta("token");
  app.person = token ? await getMeta("person") : null;
  app.areas = (await getMeta("areas")) || [];
}

// -- the status line, on every screen -------------------------------------------------------

async function drawStatus(outcome) {
  if (!app.person) {
    clear(statusBar);
    return;
  }
  const waiting = await getAll(STORES.outbox);
  const attention = await getAll(STORES.attention);
  const lastSync = await getMeta("last_sync");
  const blocked = await getMeta("blocked");
  const now = Date.now();
  const oldest = waiting.reduce((first, item) => Math.min(first, item.queued_at), now);
  const lines = [
    h("p", { id: "waiting-count", "data-count": waiting.length },
      waiting.length ? t("waiting", { count: waiting.length, age: ageText(now - oldest) }) : t("nothing_waiting")),
    h("p", { id: "last-sync" }, lastSync ? t("last_synced", { time: clockText(lastSync) }) : t("never_synced")),
  ];
  if (waiting.length && now - oldest > UNSENT_WARNING_MS) lines.push(h("p", { class: "warning" }, t("unsent_warning")));
  if (!navigator.onLine) lines.push(h("p", {}, t("offline")));
  else if (waiting.some((item) => item.last_error)) lines.push(h("p", {}, t("retry_later")));
  if (attention.length) lines.push(h("p", {}, h("a", { href: "#/attention", id: "attention-link" }, t("attention_count", { count: attention.length }))));
  if (blocked && blocked.kind === "needs_enrolment") {
    lines.push(h("p", { class: "warning" }, t("join_again", { message: blocked.message }), " ", h("a", { href: "#/join" }, t("join_again_button"))));
  } else if (blocked && blocked.kind === "update_required") {
    const update = h("button", { type: "button", class: "small primary", id: "update-app" }, t("update_app_button"));
    update.addEventListener("click", () => updateApp());
    lines.push(h("p", { class: "warning" }, t("update_app"), " ", update, " ",
      h("span", { id: "update-said", role: "status" }, app.updateNote ? t(app.updateNote) : "")));
  }
  const running = outcome && outcome.status === "running";
  const send = h("button", { type: "button", class: "small", id: "send-now", disabled: !waiting.length || running },
    running ? t("sending") : t("send_now"));
  send.addEventListener("click", () => runSync(true));
  statusBar.replaceChildren(h("div", { class: "status-text" }, lines), send);
}

async function runSync(force) {
  if (!app.person) return;
  await drawStatus({ status: "running" });
  await syncNow({ force, version: app.version });
}

let retryTimer = null;

async function planRetry() {
  // Backoff with jitter (or the server's Retry-After): try again by itself when an item is due.
  clearTimeout(retryTimer);
  const due = await nextAttemptAt();
  if (due !== null) retryTimer = setTimeout(() => runSync(false), Math.max(1000, due - Date.now() + 50));
}

onSyncChange((outcome) => {
  drawStatus();
  if (outcome && outcome.status === "busy" && navigator.locks) {
    // The service worker is syncing: when it lets go, look again (and plan any retry here,
    // since a service worker keeps no timers).
    navigator.locks.request("kerbside-sync", { mode: "shared" }, () => null).then(() => runSync(false));
  } else {
    planRetry();
  }
  refreshLists();
});

// -- routes ---------------------------------------------------------------------------------

function drawNav() {
  const links = [["#/", "nav_home"], ["#/deal", "nav_deal"], ["#/mine", "nav_mine"], ["#/settings", "nav_settings"]];
  nav.replaceChildren(...(app.person ? links.map(([href, id]) => h("a", { href, "aria-current": routeBase() === href ? "page" : null }, t(id))) : []));
}

function routeBase() {
  const hash = location.hash || "#/";
  const parts = hash.split("/");
  return parts.length > 1 && parts[1] ? `#/${parts[1]}` : "#/";
}

let routing = Promise.resolve();

function route() {
  routing = routing.then(drawRoute, drawRoute);
  return routing;
}

function fillingForm() {
  return /^#\/(draft|new|correct)\//.test(location.hash);
}

// Lists on screen may have changed after a sync: redraw them, but never a form being filled.
function refreshLists() {
  routing = routing.then(() => (fillingForm() ? null : drawRoute()), () => null);
  return routing;
}

async function drawRoute() {
  const hash = location.hash || "#/";
  const [, page, argument] = hash.split("/");
  // A coordinator's QR opens /app/#invite=<code>: in the fragment, the code never reaches a server log.
  const invited = /^#invite=([\w-]+)$/.exec(hash);
  const joinCode = (invited && invited[1]) || new URLSearchParams(location.search).get("code") ||
    (page === "join" ? decodeURIComponent(argument || "") : "");
  await loadIdentity();
  // A phone the server signed out joins again (same person, outbox kept); one still signed in
  // changes hands only after its volunteer signs out.
  const blocked = await getMeta("blocked");
  app.mayJoinAgain = Boolean(blocked && blocked.kind === "needs_enrolment");
  drawNav();
  drawStatus();
  const flash = app.flashText;
  if (!app.person || page === "join" || invited) {
    showJoin(main, app, joinCode);
  } else if (page === "new") {
    const id = await startDraft(app, decodeURIComponent(argument || ""));
    history.replaceState(null, "", id ? `#/draft/${id}` : "#/");
    await (id ? showDraft(main, app, id) : showHome(main, app));
  } else if (page === "correct") {
    // A flagged visit's correction opens as a draft pre-filled with its answers.
    const id = await startCorrection(app, decodeURIComponent(argument || ""));
    history.replaceState(null, "", id ? `#/draft/${id}` : "#/");
    await (id ? showDraft(main, app, id) : showHome(main, app));
    if (!id) main.prepend(h("p", { class: "flash", role: "status" }, t("correct_not_possible")));
  } else if (page === "draft") await showDraft(main, app, argument);
  else if (page === "deal") await showDeal(main, app);
  else if (page === "mine") await showMine(main, app);
  else if (page === "attention") await showAttention(main, app);
  else if (page === "settings") await showSettings(main, app);
  else await showHome(main, app);
  if (flash) main.prepend(h("p", { class: "flash", role: "status" }, flash));
}

window.addEventListener("hashchange", async () => {
  if (app.flashKeep > 0) app.flashKeep -= 1;
  else app.flashText = "";
  await route();
  main.focus();
});

// -- updates: a new version waits until the person reloads into it -------------------------

function showBanner(text, button) {
  banner.replaceChildren(h("p", {}, text), button || "");
  banner.hidden = false;
}

// Let a new worker take over and reload into it once it is in charge.
function reloadInto(worker) {
  let reloading = false;
  const reloadOnce = () => {
    if (reloading) return;
    reloading = true;
    location.reload();
  };
  // A controlled page hears controllerchange; a page opened before the first install
  // is not controlled, so the new worker's activation is the signal too.
  navigator.serviceWorker.addEventListener("controllerchange", reloadOnce);
  worker.addEventListener("statechange", () => {
    if (worker.state === "installed") worker.postMessage({ type: "skip-waiting" });
    if (worker.state === "activated") reloadOnce();
  });
  if (worker.state === "installed") worker.postMessage({ type: "skip-waiting" });
}

function offerUpdate(worker) {
  const reload = h("button", { type: "button", class: "primary", id: "update-reload" }, t("update_reload"));
  reload.addEventListener("click", () => reloadInto(worker));
  showBanner(t("update_available"), reload);
}

// The server needs a newer app: fetch the newest worker now and reload into it. Visits stay.
async function updateApp() {
  const say = (note) => {
    app.updateNote = note; // kept across redraws of the status line
    drawStatus();
  };
  say("update_checking");
  const registration = app.registration || ("serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration() : null);
  if (!registration) {
    location.reload();
    return;
  }
  try {
    await registration.update();
  } catch (error) {
    say("update_offline");
    return;
  }
  const worker = registration.installing || registration.waiting;
  if (worker) reloadInto(worker);
  else say("update_none_yet");
}

function watchInstalling(registration, worker) {
  // An update when a version is already active; the first install when none is.
  const firstInstall = !registration.active;
  worker.addEventListener("statechange", () => {
    if (worker.state === "installed" && !firstInstall) offerUpdate(worker);
    if (worker.state === "activated" && firstInstall) showBanner(t("ready_offline"));
  });
}

async function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  const registration = await navigator.serviceWorker.register("/app/sw.js", { scope: "/app/", type: "module" });
  app.registration = registration;
  if (registration.waiting && registration.active) offerUpdate(registration.waiting);
  if (registration.installing) watchInstalling(registration, registration.installing);
  registration.addEventListener("updatefound", () => watchInstalling(registration, registration.installing));
  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data && event.data.type === "synced") {
      drawStatus();
      refreshLists();
    }
  });
}

// -- start ----------------------------------------------------------------------------------

async function start() {
  sendPendingSignOut();
  await route();
  registerWorker().catch(() => showBanner(t("offline")));
  if (app.person) {
    askPersistence();
    runSync(true);
  }
  window.addEventListener("online", () => {
    sendPendingSignOut();
    runSync(true);
  });
  window.addEventListener("offline", () => drawStatus());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") runSync(false);
  });
  setInterval(async () => {
    drawStatus();
    if (navigator.onLine && (await getMeta("pending_sign_out"))) sendPendingSignOut();
    if (!app.person || !navigator.onLine) return;
    const waiting = await getAll(STORES.outbox);
    const lastSync = (await getMeta("last_sync")) || 0;
    if (waiting.length || Date.now() - lastSync > IDLE_PULL_MS) runSync(false);
  }, TIMER_MS);
}

start();
