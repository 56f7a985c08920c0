// The field app's messages, looked up by id. They are written once, in server/pwa_messages.py,
// translated in the server's .po files, and built into one JSON catalogue per shipped language
// (i18n/<tag>.json beside the modules, precached by the service worker): this module only
// loads the language's catalogue and the default one, which fills any gap.

import { LANGUAGES, DEFAULT_LANGUAGE } from "./languages.js";
import { compilePlural } from "./plural.js";
import { setMeta } from "./db.js";

// The person's choice in Settings; without one, the phone's languages decide.
const CHOICE_KEY = "kerbside-language";
const HEADER = "";

function shipped(tag) {
  if (!tag) return null;
  const wanted = String(tag).toLowerCase();
  const exact = LANGUAGES.find((language) => language.tag.toLowerCase() === wanted);
  if (exact) return exact;
  const base = wanted.split("-")[0];
  return LANGUAGES.find((language) => language.tag.toLowerCase().split("-")[0] === base) || null;
}

// The language the person chose in Settings, or null (the phone's languages decide).
export function chosenLanguage() {
  try {
    const tag = globalThis.localStorage && localStorage.getItem(CHOICE_KEY);
    return shipped(tag) ? shipped(tag).tag : null;
  } catch (ignored) {
    return null;
  }
}

function pickLanguage() {
  const chosen = chosenLanguage();
  if (chosen) return shipped(chosen);
  const wanted = (globalThis.navigator && navigator.languages) || [];
  for (const tag of wanted) {
    const found = shipped(tag);
    if (found) return found;
  }
  return shipped(DEFAULT_LANGUAGE);
}

async function loadCatalogue(language) {
  const response = await fetch(new URL(`../${language.catalogue}`, import.meta.url));
  if (!response.ok) throw new Error(`catalogue ${language.tag}: ${response.status}`);
  return response.json();
}

function prepare(catalogue) {
  const header = catalogue[HEADER] || {};
  return { messages: catalogue, pluralIndex: compilePlural(header.plural || "n != 1"), nplurals: header.nplurals || 2 };
}

const defaultLanguage = shipped(DEFAULT_LANGUAGE);
const fallback = prepare(await loadCatalogue(defaultLanguage));
let current = fallback;
export let LANGUAGE = defaultLanguage.tag;
export let DIRECTION = defaultLanguage.dir;

function applyToDocument() {
  if (!globalThis.document || !document.documentElement) return;
  document.documentElement.lang = LANGUAGE;
  document.documentElement.dir = DIRECTION;
  // The shell's own words were written by the server in the language of its first load (the
  // worker keeps that copy): say them in the app's language.
  const skip = document.querySelector(".skip-link");
  if (skip) skip.textContent = t("skip");
  const nav = document.getElementById("nav");
  if (nav) nav.setAttribute("aria-label", t("nav_label"));
}

// Switch to `tag` (a shipped language): load its catalogue, set lang/dir on the page. A catalogue
// that cannot be loaded leaves the default language in place.
export async function useLanguage(tag) {
  const language = shipped(tag) || defaultLanguage;
  try {
    current = language.tag === defaultLanguage.tag ? fallback : prepare(await loadCatalogue(language));
    LANGUAGE = language.tag;
    DIRECTION = language.dir;
  } catch (ignored) {
    current = fallback;
    LANGUAGE = defaultLanguage.tag;
    DIRECTION = defaultLanguage.dir;
  }
  applyToDocument();
  // The sync client (in the page and in the service worker) asks the server for its messages in it.
  setMeta("language", LANGUAGE).catch(() => {});
  return LANGUAGE;
}

// Keep the person's choice (null: follow the phone again), then switch to it.
export async function chooseLanguage(tag) {
  try {
    if (tag && shipped(tag)) localStorage.setItem(CHOICE_KEY, shipped(tag).tag);
    else localStorage.removeItem(CHOICE_KEY);
  } catch (ignored) {
    // Storage refused: the choice lasts until the app is closed.
  }
  return useLanguage(tag && shipped(tag) ? tag : pickLanguage().tag);
}

// The languages this app ships: [{tag, name, dir}], each named in itself.
export function languages() {
  return LANGUAGES.map(({ tag, name, dir }) => ({ tag, name, dir }));
}

await useLanguage(pickLanguage().tag);

function lookup(id) {
  const own = current.messages[id];
  if (own !== undefined && id !== HEADER) return { text: own, catalogue: current };
  const english = fallback.messages[id];
  if (english !== undefined && id !== HEADER) return { text: english, catalogue: fallback };
  return null;
}

function fill(text, values) {
  return String(text).replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

// Whether the catalogues hold `id` (a server message with a known code is shown in the phone's language).
export function has(id) {
  return lookup(id) !== null;
}

export function t(id, values = {}) {
  const found = lookup(id);
  if (!found) return id;
  const text = Array.isArray(found.text) ? found.text[found.catalogue.pluralIndex(1)] : found.text;
  return fill(text, values);
}

// A plural message: the form the language's Plural-Forms picks for `count` ({count} is filled in too).
export function tn(id, count, values = {}) {
  const found = lookup(id);
  if (!found) return id;
  const forms = Array.isArray(found.text) ? found.text : [found.text];
  const index = found.catalogue.pluralIndex(count);
  const text = forms[Math.min(Math.max(index, 0), forms.length - 1)];
  return fill(text, { count, ...values });
}

export function ageText(ms) {
  const minutes = Math.floor(ms / 60000);
  if (minutes < 1) return t("just_now");
  if (minutes < 60) return tn("minutes", minutes, { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return tn("hours", hours, { n: hours });
  const days = Math.floor(hours / 24);
  return tn("days", days, { n: days });
}

export function clockText(when) {
  const moment = new Date(when);
  const sameDay = new Date().toDateString() === moment.toDateString();
  const time = moment.toLocaleTimeString(LANGUAGE, { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${moment.toLocaleDateString(LANGUAGE, { day: "numeric", month: "short" })} ${time}`;
}
