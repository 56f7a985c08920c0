// The screens of the field app. Each draws into <main> from what IndexedDB holds.

import { h, clear, uniqueId } from "./dom.js";
import { t, tn, has, LANGUAGE, ageText, clockText, languages, chosenLanguage, chooseLanguage } from "./messages.js";
import { STORES, getAll, getOne, getMeta, setMeta, countOf, replicaAll, replicaGet, clearEverything } from "./db.js";
import { renderForm, readChange, missingAnswers, formLines } from "./forms.js";
import { formInLanguage, agreementInLanguage } from "./content.js";
import { newDraft, newCorrection, saveDraft, getDraft, deleteDraft, queueDraft, downloadUnsent, draftKeeper, answeredLines, restoreUnsent } from "./outbox.js";
import { FORM_KINDS, FORM_ROLES, STAFF_ROLES, COULD_NOT_SEND } from "./protocol.js";
import { sendAgain, queueSignOut } from "./sync.js";
import { shownNotices, dismissNotice } from "./notices.js";
const NEW_FORM_MESSAGES = { street: "new_street", checklist: "new_checklist", mystery_shop: "new_shop" };

// The listeners of the form on screen (flush on pagehide, ...): removed when another screen is drawn.
let formListeners = null;

function screen(main, title, ...children) {
  if (formListeners) formListeners.abort();
  formListeners = null;
  clear(main);
  document.title = `${title} · ${t("app_name")}`;
  main.append(h("h1", {}, title), ...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

export async function currentForms(person) {
  const roles = new Set((person.roles || []).map((role) => role.role));
  const latest = new Map();
  for (const form of await replicaAll("forms")) {
    if (form.status !== "published") continue;
    const known = latest.get(form.id);
    if (!known || form.version > known.version) latest.set(form.id, form);
  }
  // A shared form gives way to an area's own copy once the copy is published: hidden when
  // every area the volunteer works in uses its own copy (in a mix of areas, both are offered).
  const areaIds = new Set((person.roles || []).map((role) => role.area_id).filter(Boolean));
  const copiedIn = new Map();
  for (const form of latest.values()) {
    if (!form.copy_of || !form.area_id) continue;
    if (!copiedIn.has(form.copy_of)) copiedIn.set(form.copy_of, new Set());
    copiedIn.get(form.copy_of).add(form.area_id);
  }
  const replaced = (form) => !form.area_id && areaIds.size > 0 && copiedIn.has(form.id)
    && [...areaIds].every((areaId) => copiedIn.get(form.id).has(areaId));
  return [...latest.values()]
    .filter((form) => !replaced(form))
    .map((form) => formInLanguage(form))
    .filter((form) => [...(FORM_ROLES[form.kind] || []), ...STAFF_ROLES].some((role) => roles.has(role)))
    .sort((a, b) => FORM_KINDS.indexOf(a.kind) - FORM_KINDS.indexOf(b.kind));
}

async function siteName(siteId) {
  // A visit whose proposed site a coordinator rejected is kept with no site.
  if (siteId === null) return t("no_site");
  const site = siteId ? await replicaGet("sites", siteId) : null;
  return site ? site.name : t("unknown_site");
}

// A site in the picker: the volunteer's own proposal, or a site they changed, says it waits for review.
function siteLabel(site) {
  if (site.status === "proposed") return t("site_proposed_label", { name: site.name });
  if (site.pending_edit) return t("site_pending_edit_label", { name: site.name });
  return site.name;
}

// A message from the server: in the phone's language when its code is known, else as the server wrote it.
function noticeText(notice) {
  if (notice.code && has(`notice_${notice.code}`)) {
    return t(`notice_${notice.code}`, { ...notice, reason: notice.reason || "" }).trim();
  }
  return notice.message;
}

function itemSite(item) {
  return item.new_site ? t("new_site_label", { name: item.new_site }) : item.site_name || t("unknown_site");
}

// -- join ------------------------------------------------------------------------------

export function showJoin(main, app, prefill = "") {
  const codeId = uniqueId("code");
  const nameId = uniqueId("device");
  const personId = uniqueId("person");
  const message = h("p", { class: "notice", role: "alert", hidden: true });
  const code = h("input", { id: codeId, name: "code", autocomplete: "off", autocapitalize: "characters", required: true, value: prefill, spellcheck: "false" });
  const deviceName = h("input", { id: nameId, name: "device_name", autocomplete: "off", value: "" });
  const yourName = h("input", { id: personId, name: "display_name", autocomplete: "name", value: "", "aria-describedby": `${personId}-hint` });
  const scan = h("input", { type: "file", accept: "image/*", capture: "environment", id: uniqueId("qr"), class: "visually-hidden-file" });
  const scanning = "BarcodeDetector" in globalThis;
  scan.addEventListener("change", async () => {
    const file = scan.files && scan.files[0];
    if (!file) return;
    try {
      const codes = await new globalThis.BarcodeDetector({ formats: ["qr_code"] }).detect(await createImageBitmap(file));
      const raw = codes.length ? codes[0].rawValue : "";
      const found = raw.match(/(?:code|invite)=([\w-]+)/) || raw.match(/^([\w-]+)$/);
      if (!found) throw new Error("no code");
      code.value = found[1];
    } catch (error) {
      message.textContent = t("scan_failed");
      message.hidden = false;
    }
  });
  const form = h("form", { class: "stack", novalidate: true },
    h("label", { for: codeId }, t("invite_code")), code,
    h("label", { for: personId }, t("your_name")), yourName,
    h("p", { class: "hint", id: `${personId}-hint` }, t("your_name_hint")),
    h("label", { for: nameId }, t("device_name")), deviceName,
    h("button", { type: "submit", class: "primary" }, t("join_button")),
    scanning ? h("label", { for: scan.id, class: "button secondary" }, t("scan_qr")) : null,
    scanning ? scan : null);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.hidden = true;
    const problem = await app.join(code.value.trim(), deviceName.value.trim(), yourName.value.trim());
    if (problem) {
      message.textContent = problem;
      message.hidden = false;
      code.focus();
    }
  });
  // A shared phone changes hands only after the volunteer on it has signed out (Settings).
  const signedIn = app.person && !app.mayJoinAgain
    ? h("p", { class: "notice", role: "status" }, t("join_signed_in", { name: app.person.display_name || t("home_title_no_name") }), " ",
      h("a", { href: "#/settings" }, t("nav_settings")))
    : null;
  screen(main, t("join_title"), h("p", {}, t("join_intro")), signedIn, message, signedIn ? null : form);
}

// -- home ------------------------------------------------------------------------------

// "today 14:05", "yesterday 09:30" or "20 Nov 14:05", in the phone's language.
function dayAndTime(moment, now = new Date()) {
  const time = moment.toLocaleTimeString(LANGUAGE, { hour: "2-digit", minute: "2-digit" });
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (moment.toDateString() === now.toDateString()) return t("today_at", { time });
  if (moment.toDateString() === yesterday.toDateString()) return t("yesterday_at", { time });
  const date = moment.toLocaleDateString(LANGUAGE, moment.getFullYear() === now.getFullYear()
    ? { day: "numeric", month: "short" } : { day: "numeric", month: "short", year: "numeric" });
  return t("date_at", { date, time });
}

function draftSite(draft) {
  if (draft.site.mode === "new") return t("new_site_label", { name: draft.site.new_name.trim() || t("no_name_yet") });
  return draft.site.site_name || t("no_site_yet");
}

// "Hope Street, today 14:05, 7 of 12 lines": the site, the visit's time, and how far it got.
async function draftSummary(draft) {
  const when = new Date(draft.observed_local);
  const values = { site: draftSite(draft), when: Number.isNaN(when.getTime()) ? t("no_time_yet") : dayAndTime(when) };
  const definition = await replicaGet("forms", `${draft.form.id}@${draft.form.version}`);
  if (!definition) return t("draft_summary_short", values);
  return t("draft_summary", { ...values, answered: answeredLines(draft), lines: formLines(definition).length });
}

// -- visits to correct ------------------------------------------------------------------

// The person's flagged visits no correction has superseded, each with the draft or waiting
// item that corrects it on this phone, if any (then it is on its way, not to be begun again).
export async function visitsToCorrect() {
  const flagged = (await replicaAll("my_submissions"))
    .filter((visit) => visit.review_status === "flagged" && !visit.superseded_by)
    .sort((a, b) => String(b.received_at).localeCompare(String(a.received_at)));
  const drafts = new Map((await getAll(STORES.drafts)).filter((draft) => draft.corrects).map((draft) => [draft.corrects.id, draft]));
  const queued = new Set((await getAll(STORES.outbox)).map((item) => item.mutation.data.supersedes).filter(Boolean));
  return flagged.map((visit) => ({ visit, draft: drafts.get(visit.id) || null, queued: queued.has(visit.id) }));
}

// The form a correction is filled on: the flagged visit's own version, or the published
// successor when that version was retired (or is no longer on the phone).
async function correctionForm(visit) {
  const own = await replicaGet("forms", `${visit.form.id}@${visit.form.version}`);
  if (own && own.status === "published") return own;
  let successor = null;
  for (const form of await replicaAll("forms")) {
    if (form.id === visit.form.id && form.status === "published" && (!successor || form.version > successor.version)) successor = form;
  }
  return successor || own;
}

// Begin (or carry on) correcting a flagged visit; returns the draft's id, or null.
export async function startCorrection(app, submissionId) {
  const found = (await visitsToCorrect()).find((entry) => entry.visit.id === submissionId);
  if (!found || found.queued) return null;
  if (found.draft) return found.draft.id;
  const form = await correctionForm(found.visit);
  if (!form) return null;
  const draft = newCorrection(form, found.visit, await siteName(found.visit.site_id));
  unsavedDrafts.clear(); // only the form on screen can be unsaved
  unsavedDrafts.set(draft.id, draft);
  return draft.id;
}

async function correctionCard(entry) {
  const { visit, draft, queued } = entry;
  const action = queued
    ? h("p", { class: "hint" }, t("correction_waiting"))
    : h("a", { class: "button primary", href: draft ? `#/draft/${draft.id}` : `#/correct/${encodeURIComponent(visit.id)}` },
      t(draft ? "correct_carry_on" : "correct_button"));
  return h("li", { class: "to-correct", "data-id": visit.id },
    h("p", { class: "card-title" }, `${t(`kind_${visit.kind}`)} — ${await siteName(visit.site_id)}`),
    h("p", {}, t("observed_on", { when: dayAndTime(new Date(visit.observed_at)) })),
    h("p", { class: "reason" }, t("flagged_because", { reason: visit.review_reason || "" })),
    action);
}

export async function showHome(main, app) {
  const person = app.person;
  const toCorrect = (await visitsToCorrect()).filter((entry) => !entry.queued);
  const forms = await currentForms(person);
  const drafts = (await getAll(STORES.drafts)).sort((a, b) => b.updated_at - a.updated_at);
  const attention = await getAll(STORES.attention);
  const notices = await shownNotices();
  const start = forms.length
    ? h("ul", { class: "actions" }, forms.map((form) => h("li", {},
      h("a", { class: "button primary", href: `#/new/${encodeURIComponent(form.id)}` }, t(NEW_FORM_MESSAGES[form.kind] || "new_street")))))
    : h("p", {}, t("no_forms"));
  const draftList = drafts.length
    ? h("ul", { class: "cards drafts" }, await Promise.all(drafts.map(async (draft) => h("li", {},
      h("a", { href: `#/draft/${draft.id}` }, await draftSummary(draft)),
      h("p", { class: "hint" }, draft.corrects ? t("draft_corrects", { kind: t(`kind_${draft.kind}`) }) : t(`kind_${draft.kind}`))))))
    : h("p", {}, t("no_drafts"));
  const corrections = toCorrect.length
    ? h("section", { class: "needs-correcting", id: "needs-correcting", "aria-labelledby": "needs-correcting-title" },
      h("h2", { id: "needs-correcting-title" }, tn("correct_count", toCorrect.length)),
      h("p", {}, t("correct_intro")),
      h("ul", { class: "cards" }, await Promise.all(toCorrect.map(correctionCard))))
    : null;
  // No placeholder: a volunteer who gave no name is greeted with just "Hello".
  screen(main, person.display_name ? t("home_title", { name: person.display_name }) : t("home_title_no_name"),
    attention.length ? h("p", { class: "warning" }, h("a", { href: "#/attention" }, t("attention_count", { count: attention.length }))) : null,
    corrections,
    h("h2", {}, t("start_title")), start,
    h("h2", {}, t("drafts_title")), draftList,
    notices.length ? noticeList(notices) : null);
}

// Each message with a button that hides it for good on this phone (kept in IndexedDB).
function noticeList(notices) {
  const headingId = uniqueId("notices");
  const section = h("section", { class: "notices", "aria-labelledby": headingId }, h("h2", { id: headingId }, t("notices_title")));
  const list = h("ul", { class: "cards" });
  for (const notice of notices) {
    const dismiss = h("button", { type: "button", class: "small secondary" }, t("notice_dismiss"));
    const item = h("li", { class: "notice-item", "data-notice": notice.code || "" }, h("p", {}, noticeText(notice)), dismiss);
    dismiss.addEventListener("click", async () => {
      dismiss.disabled = true;
      await dismissNotice(notice.id);
      item.remove();
      if (!list.children.length) section.remove();
    });
    list.append(item);
  }
  section.append(list);
  return section;
}

// -- filling a form --------------------------------------------------------------------

function distanceMetres(a, b) {
  const radians = Math.PI / 180;
  const dLat = (b.lat - a.lat) * radians;
  const dLng = (b.lng - a.lng) * radians;
  const x = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * radians) * Math.cos(b.lat * radians) * Math.sin(dLng / 2) ** 2;
  return Math.round(6371000 * 2 * Math.atan2(Math.sqrt(x), Math.sqrt(1 - x)));
}

// `changed(real)` keeps the draft; `real` is false for what the phone noted by itself.
function sitePicker(draft, sites, changed) {
  const searchId = uniqueId("search");
  const newId_ = uniqueId("newsite");
  const list = h("div", { class: "options site-options" });
  const search = h("input", { id: searchId, type: "search", autocomplete: "off" });
  const status = h("p", { class: "hint", role: "status" });
  const newName = h("input", { id: newId_, value: draft.site.new_name || "", "data-site": "new-name" });
  const newBox = h("div", { class: "stack", hidden: draft.site.mode !== "new" }, h("label", { for: newId_ }, t("site_new_name")), newName);
  let nearest = null;

  function draw() {
    const query = search.value.trim().toLowerCase();
    let shown;
    if (nearest) shown = nearest;
    else if (query) shown = sites.filter((site) => site.name.toLowerCase().includes(query)).slice(0, 8).map((site) => ({ site }));
    else shown = [];
    const chosen = sites.find((site) => site.id === draft.site.site_id);
    if (chosen && draft.site.mode === "list" && !shown.some((row) => row.site.id === chosen.id)) shown.unshift({ site: chosen });
    if (query && !shown.length) status.textContent = t("site_none_found");
    list.replaceChildren(...shown.map((row) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "site", value: row.site.id, checked: draft.site.mode === "list" && draft.site.site_id === row.site.id }),
      h("span", {}, row.metres === undefined ? siteLabel(row.site) : t("site_distance", { name: siteLabel(row.site), metres: row.metres })))),
    h("label", { class: "choice" }, h("input", { type: "radio", name: "site", value: "__new", checked: draft.site.mode === "new" }), h("span", {}, t("site_new"))));
  }

  search.addEventListener("input", () => {
    nearest = null;
    status.textContent = "";
    draw();
  });
  list.addEventListener("change", (event) => {
    if (event.target.name !== "site") return;
    if (event.target.value === "__new") {
      draft.site = { ...draft.site, mode: "new", site_id: null, site_name: "" };
    } else {
      const site = sites.find((known) => known.id === event.target.value);
      draft.site = { ...draft.site, mode: "list", site_id: site.id, site_name: site.name };
    }
    newBox.hidden = draft.site.mode !== "new";
    changed(true);
  });
  newName.addEventListener("input", () => {
    draft.site = { ...draft.site, new_name: newName.value };
    changed(true);
  });
  const near = h("button", { type: "button", class: "secondary" }, t("site_nearest"));
  near.addEventListener("click", () => {
    if (!navigator.geolocation) {
      status.textContent = t("site_no_location");
      return;
    }
    status.textContent = t("site_locating");
    navigator.geolocation.getCurrentPosition((position) => {
      const here = { lat: Math.round(position.coords.latitude * 1e6) / 1e6, lng: Math.round(position.coords.longitude * 1e6) / 1e6 };
      draft.location = { ...here, accuracy_m: Math.round(position.coords.accuracy) };
      changed(false); // found by the phone, not entered: kept once the draft exists
      nearest = sites.filter((site) => typeof site.lat === "number" && typeof site.lng === "number")
        .map((site) => ({ site, metres: distanceMetres(here, site) }))
        .sort((a, b) => a.metres - b.metres).slice(0, 5);
      status.textContent = "";
      draw();
    }, () => {
      status.textContent = t("site_no_location");
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });
  draw();
  return h("fieldset", { class: "line", id: "line-site", "aria-describedby": "error-site" },
    h("legend", {}, t("form_site")),
    h("p", { id: "error-site", class: "field-error", hidden: true }),
    h("label", { for: searchId }, t("site_search")), search, near, status, list, newBox);
}

async function loadPhotoUrls(draft) {
  const urls = new Map();
  for (const answer of Object.values(draft.answers)) {
    for (const sha of answer.photos || []) {
      const blob = await getOne(STORES.blobs, sha);
      if (blob) urls.set(sha, URL.createObjectURL(new Blob([blob.bytes], { type: blob.type })));
    }
  }
  return urls;
}

// A form just opened: kept in memory only, until its first real change stores it as a draft.
const unsavedDrafts = new Map();

export async function startDraft(app, formId) {
  const forms = await currentForms(app.person);
  const form = forms.find((known) => known.id === formId);
  if (!form) return null;
  const draft = newDraft(form);
  unsavedDrafts.clear(); // only the form on screen can be unsaved
  unsavedDrafts.set(draft.id, draft);
  return draft.id;
}

export async function showDraft(main, app, draftId) {
  const stored = await getDraft(draftId);
  const draft = stored || unsavedDrafts.get(draftId);
  if (!draft) {
    app.go("#/");
    return;
  }
  // A draft is always filled against its own form version, even after a newer one is published;
  // its texts read in the volunteer's language where the version has them (answers stay by key).
  const storedDefinition = await replicaGet("forms", `${draft.form.id}@${draft.form.version}`);
  const definition = storedDefinition ? formInLanguage(storedDefinition) : null;
  if (!definition) {
    screen(main, draft.title, h("p", { class: "notice" }, t("form_missing")));
    return;
  }
  const areaIds = new Set((app.areas || []).map((area) => area.id));
  // The replica holds the area's approved sites and this volunteer's own proposals still waiting
  // (the server sends nothing else); merged and rejected ones have left it.
  const sites = (await replicaAll("sites")).filter((site) => !areaIds.size || areaIds.has(site.area_id)).sort((a, b) => a.name.localeCompare(b.name));
  const urls = await loadPhotoUrls(draft);
  const saved = h("p", { class: "hint", id: "autosave" });
  const keeper = draftKeeper(draft, Boolean(stored), {
    onSaved: () => {
      unsavedDrafts.delete(draft.id);
      saved.textContent = t("autosaved");
    },
    onFailed: () => {
      saved.textContent = t("draft_not_kept");
    },
  });
  // Redraw the form once IndexedDB holds the draft as it is (a photo was added or removed).
  const redraw = async () => {
    await keeper.stop();
    await showDraft(main, app, draftId);
  };
  const context = {
    blobUrl: (sha) => urls.get(sha) || "",
    removePhoto: async (key, sha) => {
      draft.answers[key] = { ...draft.answers[key], photos: (draft.answers[key].photos || []).filter((known) => known !== sha) };
      keeper.changed();
      await redraw();
    },
  };
  const whenId = uniqueId("when");
  const when = h("input", { id: whenId, type: "datetime-local", required: true, value: draft.observed_local, "aria-describedby": "error-observed" });
  when.addEventListener("change", () => {
    draft.observed_local = when.value;
    keeper.changed();
  });
  const notesId = uniqueId("notes");
  const notes = h("textarea", { id: notesId, rows: 3, value: draft.notes || "" });
  notes.addEventListener("input", () => {
    draft.notes = notes.value;
    keeper.changed();
  });
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const body = renderForm(definition, draft, context);
  body.addEventListener("change", async (event) => {
    const target = event.target;
    if (target.type === "file") {
      try {
        if (await readChange(draft, target)) {
          keeper.changed();
          await redraw();
        }
      } catch (error) {
        saved.textContent = t("photo_failed");
      }
      return;
    }
    if (await readChange(draft, target)) keeper.changed();
  });
  body.addEventListener("input", async (event) => {
    if (event.target.tagName === "TEXTAREA" && (await readChange(draft, event.target))) keeper.changed();
  });
  const form = h("form", { class: "visit", novalidate: true },
    summary,
    sitePicker(draft, sites, (real) => keeper.changed(real)),
    h("div", { class: "line", id: "line-observed" }, h("label", { for: whenId }, t("observed_at")), when, h("p", { id: "error-observed", class: "field-error", hidden: true })),
    body,
    h("div", { class: "line" }, h("label", { for: notesId }, t("general_notes")), notes),
    saved,
    h("button", { type: "submit", class: "primary" }, t("save")),
    h("button", { type: "button", class: "secondary", onclick: async () => {
      if (globalThis.confirm(t("confirm_delete_draft"))) {
        await keeper.stop();
        unsavedDrafts.delete(draft.id);
        await deleteDraft(draft.id);
        app.go("#/");
      }
    } }, t("delete_draft")));
  let saving = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    // A double tap must not re-save the draft after it was queued, and so queue it twice.
    if (saving) return;
    saving = true;
    try {
      await submitVisit();
    } finally {
      saving = false;
    }
  });
  async function submitVisit() {
    const missing = missingAnswers(definition, draft);
    if (draft.site.mode === "new" ? !draft.site.new_name.trim() : !draft.site.site_id) missing.site = t("needs_site");
    if (!draft.observed_local) missing.observed = t("needs_time");
    for (const element of form.querySelectorAll(".field-error")) element.hidden = true;
    for (const element of form.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
    if (Object.keys(missing).length) {
      for (const [key, text] of Object.entries(missing)) {
        const element = form.querySelector(`#error-${CSS.escape(key)}`);
        if (element) {
          element.textContent = text;
          element.hidden = false;
          // The field (a line's fieldset, or its input) that the message describes is marked invalid.
          for (const field of form.querySelectorAll(`[aria-describedby~="error-${CSS.escape(key)}"]`)) field.setAttribute("aria-invalid", "true");
        }
      }
      const labels = new Map([["site", t("form_site")], ["observed", t("observed_at")]]);
      for (const section of definition.sections) for (const line of section.lines) labels.set(line.key, line.label);
      summary.replaceChildren(h("h2", {}, t("errors_title")), h("ul", {}, Object.keys(missing).map((key) => h("li", {},
        h("a", { href: `#line-${key}`, onclick: (click) => {
          click.preventDefault();
          const target = form.querySelector(`#line-${CSS.escape(key)}`) || form.querySelector(`#${CSS.escape(whenId)}`);
          target.scrollIntoView();
          const focusable = target.matches("input") ? target : target.querySelector("input, textarea");
          if (focusable) focusable.focus();
        } }, labels.get(key) || key)))));
      summary.hidden = false;
      summary.focus();
      return;
    }
    const area = (app.areas || []).length === 1 ? app.areas[0].id : null;
    // No write of the draft may land after it is queued: it would bring the draft back.
    await keeper.stop();
    try {
      await saveDraft(draft);
      await queueDraft(draft, area);
    } catch (failed) {
      // Not queued: carry on filling it, kept as before.
      await showDraft(main, app, draftId);
      return;
    }
    unsavedDrafts.delete(draft.id);
    app.flash(t("saved"));
    app.go("#/");
    app.queued();
  }
  const correcting = draft.corrects ? h("div", { class: "notice correcting", id: "correcting", role: "note" },
    h("p", {}, t("correcting_intro", { reason: draft.corrects.reason })),
    draft.corrects.carried_over
      ? h("p", {}, t("correcting_new_version", { old: draft.corrects.from_version, version: definition.version }))
      : null) : null;
  screen(main, draft.corrects ? t("correcting_title", { title: definition.title }) : `${definition.title}`, correcting, form);
  // What was typed last is written before the page goes away or the phone switches app.
  formListeners = new AbortController();
  const listening = { signal: formListeners.signal };
  const flush = () => keeper.flush();
  window.addEventListener("pagehide", flush, listening);
  window.addEventListener("blur", flush, listening);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flush();
  }, listening);
  form.addEventListener("focusout", flush, listening);
}

// -- the agreement in the pocket -------------------------------------------------------

function latestAgreements(agreements) {
  const latest = new Map();
  for (const agreement of agreements) {
    if (agreement.status && agreement.status !== "published") continue;
    const known = latest.get(agreement.id);
    if (!known || agreement.version > known.version) latest.set(agreement.id, agreement);
  }
  return [...latest.values()];
}

export async function showDeal(main, app) {
  const agreements = latestAgreements(await replicaAll("agreements")).map((agreement) => agreementInLanguage(agreement));
  const actions = (await replicaAll("actions")).sort((a, b) => String(b.updated_at).localeCompare(String(a.updated_at))).slice(0, 20);
  const parts = agreements.map((agreement) => h("section", { class: "deal" },
    h("h2", {}, agreement.title),
    agreement.summary ? h("p", {}, agreement.summary) : null,
    h("h3", {}, t("themes")),
    h("ul", {}, (agreement.themes || []).map((theme) => h("li", {}, h("strong", {}, theme.name), theme.strapline ? ` — ${theme.strapline}` : ""))),
    h("h3", {}, t("our_part")),
    h("ul", {}, (agreement.our_part || []).map((item) => h("li", {}, item.text))),
    h("h3", {}, t("your_part")),
    h("ul", {}, (agreement.your_part || []).map((item) => h("li", {}, item.text))),
    h("h3", {}, t("standards")),
    h("ul", {}, (agreement.standards || []).map((item) => h("li", {}, item.text)))));
  const actionList = actions.length
    ? h("ul", { class: "cards" }, actions.map((action) => h("li", {},
      h("p", { class: "card-title" }, action.title),
      h("p", {}, h("span", { class: `status status-${action.status}` }, t(`status_${action.status}`)), action.assigned_to ? ` · ${action.assigned_to}` : ""),
      action.status === "not_doing" && action.reason ? h("p", {}, t("action_reason", { reason: action.reason })) : null,
      action.public_note ? h("p", {}, action.public_note) : null)))
    : h("p", {}, t("no_actions"));
  screen(main, t("nav_deal"),
    agreements.length ? parts : h("p", {}, t("no_agreement")),
    h("h2", {}, t("you_said_we_did")), actionList);
}

// -- my visits -------------------------------------------------------------------------

export async function showMine(main) {
  const waiting = (await getAll(STORES.outbox)).sort((a, b) => b.queued_at - a.queued_at);
  const received = (await replicaAll("my_submissions")).sort((a, b) => String(b.received_at).localeCompare(String(a.received_at))).slice(0, 50);
  const rows = [];
  for (const item of waiting) {
    rows.push(h("li", { class: "waiting" }, h("p", { class: "card-title" }, `${item.title} — ${itemSite(item)}`),
      h("p", {}, t("mine_waiting"), ` · ${ageText(Date.now() - item.queued_at)}`)));
  }
  const correcting = new Map((await visitsToCorrect()).map((entry) => [entry.visit.id, entry]));
  for (const submission of received) {
    const review = submission.review_status === "flagged"
      ? t("review_flagged", { reason: submission.review_reason || "" })
      : t(submission.review_status === "accepted" ? "review_accepted" : "review_pending");
    const entry = correcting.get(submission.id);
    let history = null;
    if (submission.superseded_by) history = h("p", { class: "hint" }, t("mine_corrected"));
    else if (submission.supersedes) history = h("p", { class: "hint" }, t("mine_is_correction"));
    let action = null;
    if (entry && entry.queued) action = h("p", { class: "hint" }, t("correction_waiting"));
    else if (entry) {
      action = h("a", { class: "button secondary", href: entry.draft ? `#/draft/${entry.draft.id}` : `#/correct/${encodeURIComponent(submission.id)}` },
        t(entry.draft ? "correct_carry_on" : "correct_button"));
    }
    rows.push(h("li", { class: "received", "data-id": submission.id },
      h("p", { class: "card-title" }, `${t(`kind_${submission.kind}`)} — ${await siteName(submission.site_id)}`),
      h("p", {}, `${t("mine_received", { time: clockText(submission.received_at) })} · ${review}`), history, action));
  }
  screen(main, t("mine_title"), rows.length ? h("ul", { class: "cards" }, rows) : h("p", {}, t("mine_none")));
}

// -- needs attention -------------------------------------------------------------------

// How a refused answer is named to the volunteer: the protocol names it by its path
// ("answers.litter"), the volunteer knows it by its line's label on the form they filled.
async function problemPlaces(item) {
  const form = item.mutation && item.mutation.data && item.mutation.data.form;
  const stored = form ? await replicaGet("forms", `${form.id}@${form.version}`) : null;
  const labels = new Map(stored ? formLines(formInLanguage(stored)).map((line) => [`answers.${line.key}`, line.label]) : []);
  return (field) => labels.get(field) || null;
}

export async function showAttention(main, app) {
  const items = (await getAll(STORES.attention)).sort((a, b) => b.settled_at - a.settled_at);
  const places = await Promise.all(items.map(problemPlaces));
  const list = items.map((item, index) => {
    const result = item.result || {};
    const text = result.message || result.code || result.status;
    // The server never saw this one: the phone gave up sending it, and can try again.
    const stuck = result.code === COULD_NOT_SEND;
    const again = stuck ? h("button", { type: "button", class: "secondary", onclick: async () => {
      await sendAgain(item.mid);
      app.queued();
      showAttention(main, app);
    } }, t("try_again")) : null;
    return h("li", { class: "attention" },
      h("p", { class: "card-title" }, t("attention_item", { title: item.title, site: itemSite(item) })),
      // A correction of a visit corrected already is a conflict, but nobody "changed it first": the server's words say what happened.
      h("p", {}, stuck ? t("could_not_send") : t(result.status === "conflict" && result.code !== "visit_already_corrected" ? "conflict_said" : "server_said", { message: text })),
      result.errors && Object.keys(result.errors).length
        ? h("ul", {}, Object.entries(result.errors).map(([field, problems]) => {
          const said = [].concat(problems).join(" ");
          const label = places[index](field);
          return h("li", {}, label ? t("problem_at", { line: label, problem: said }) : said);
        }))
        : null,
      again);
  });
  screen(main, t("attention_title"), list.length ? h("ul", { class: "cards" }, list) : h("p", {}, t("no_attention")),
    h("p", {}, h("a", { href: "#/settings" }, t("export_title"))));
}

// -- settings --------------------------------------------------------------------------

// What can be sent: signing out while it waits would lose it, so it is sent or exported first.
export async function unsentCount() {
  return countOf(STORES.outbox);
}

// The app's language: the phone's own, or one the person picks; the screen is redrawn in it at once.
function languageChoice(app) {
  const chosen = chosenLanguage() || "";
  const option = (value, label, attributes = {}) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "language", value, checked: chosen === value,
      onchange: async () => {
        await chooseLanguage(value || null);
        app.go("#/settings");
      } }),
    h("span", attributes, label));
  return h("fieldset", { class: "line", id: "language-choice" }, h("legend", {}, t("language_title")),
    option("", t("language_phone")),
    languages().map((language) => option(language.tag, language.name, { lang: language.tag, dir: language.dir })));
}

export async function showSettings(main, app) {
  const persisted = await getMeta("persisted");
  const storage = persisted === true ? t("storage_persisted") : persisted === false ? t("storage_refused") : t("storage_unknown");
  const signOutMessage = h("p", { class: "notice", role: "alert", hidden: true });
  // "ask" stops to explain what the phone still holds; "export" downloads it first; "discard" does not.
  const signOut = async (choice) => {
    const waiting = await unsentCount();
    const drafts = await countOf(STORES.drafts);
    const attention = await countOf(STORES.attention);
    if (choice === "ask" && (waiting || drafts || attention)) {
      // Waiting items can still be sent; drafts and refused items never will be, so they do not block.
      signOutMessage.textContent = waiting ? t("sign_out_blocked", { count: waiting }) : t("sign_out_keep", { drafts, attention });
      signOutMessage.hidden = false;
      exportAndSignOut.hidden = false;
      discardAndSignOut.hidden = Boolean(waiting);
      exportAndSignOut.focus();
      return;
    }
    if (choice === "export") await downloadUnsent();
    // The token outlives the wipe until the server has heard that this device signed out.
    const token = await getMeta("token");
    await clearEverything();
    await setMeta("signed_out", true);
    const told = await queueSignOut(token);
    app.signedOut(told);
  };
  const exportAndSignOut = h("button", { type: "button", class: "primary", hidden: true, onclick: () => signOut("export") }, t("export_and_sign_out"));
  const discardAndSignOut = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => signOut("discard") }, t("sign_out_discard"));
  const restoreId = uniqueId("restore");
  const restoreFile = h("input", { id: restoreId, type: "file", accept: "application/json,.json", "aria-describedby": `${restoreId}-result` });
  const restoreResult = h("p", { id: `${restoreId}-result`, role: "status" });
  // The outcome also stays as the screen's flash: a sync may redraw the screen meanwhile.
  const tell = (text) => {
    app.flash(text);
    restoreResult.textContent = text;
    if (!restoreResult.isConnected && location.hash === "#/settings") app.go("#/settings");
  };
  restoreFile.addEventListener("change", async () => {
    const chosen = restoreFile.files && restoreFile.files[0];
    if (!chosen) return;
    restoreResult.textContent = t("restore_reading");
    let file;
    try {
      file = JSON.parse(await chosen.text());
    } catch (notJson) {
      file = null;
    }
    const outcome = await restoreUnsent(file, app.person);
    restoreFile.value = "";
    if (outcome.refused) {
      tell(t(`restore_refused_${outcome.refused}`));
      return;
    }
    tell(t("restore_done", outcome));
    if (outcome.outbox) app.queued();
  });
  screen(main, t("settings_title"),
    h("p", {}, app.person.display_name
      ? t("signed_in_as", { name: app.person.display_name, device: (await getMeta("device_name")) || "" })
      : t("signed_in_no_name", { device: (await getMeta("device_name")) || "" })),
    languageChoice(app),
    h("h2", {}, t("storage_title")), h("p", { id: "storage-answer" }, storage),
    h("h2", {}, t("export_title")), h("p", {}, t("export_intro")),
    h("button", { type: "button", class: "primary", onclick: () => downloadUnsent() }, t("export_button")),
    h("h2", {}, t("restore_title")), h("p", {}, t("restore_intro")),
    h("div", { class: "stack" }, h("label", { for: restoreId }, t("restore_file")), restoreFile), restoreResult,
    h("h2", {}, t("sign_out_title")), h("p", {}, t("sign_out_intro")),
    h("button", { type: "button", class: "secondary", onclick: () => signOut("ask") }, t("sign_out_button")),
    signOutMessage, exportAndSignOut, discardAndSignOut,
    h("p", { class: "hint" }, t("version", { version: app.version })));
}
