// Forms and agreements in the volunteer's language: a version's translation laid over its texts.
//
// A version record carries `language` (its source language) and `translations`
// ({ "cy": { "lines.litter.label": "Sbwriel", ... } }), texts named by the version's own keys
// (see sync/content.py and docs/sync-protocol.md). The page's language (`lang` on <html>, set
// from the phone's language or the Settings choice) picks one by its primary subtag; a text the
// translation lacks reads in the source language. Keys, options and answers never change: a
// choice line's translated labels go into `option_labels`, its `options` stay the answers.

import { GRADES } from "./protocol.js";

const PARTS = ["our_part", "your_part", "standards"];

export function primaryLanguage(tag) {
  return String(tag || "").replace("_", "-").split("-")[0].trim().toLowerCase();
}

export function pageLanguage() {
  return primaryLanguage(globalThis.document && document.documentElement ? document.documentElement.lang : "");
}

function given(text) {
  return typeof text === "string" && text.trim() ? text : null;
}

function pickTexts(record, wanted) {
  const language = primaryLanguage(wanted);
  const translations = record && record.translations;
  if (!language || !translations || typeof translations !== "object") return null;
  if (language === primaryLanguage(record.language || "en")) return null;
  for (const [tag, texts] of Object.entries(translations)) {
    if (primaryLanguage(tag) === language && texts && typeof texts === "object") return texts;
  }
  return null;
}

// The form version as it reads in `wanted` (default: the page's language), a copy.
export function formInLanguage(record, wanted = pageLanguage()) {
  const texts = pickTexts(record, wanted);
  if (!texts) return record;
  const shown = structuredClone(record);
  const over = (target, name, key) => {
    if (given(texts[key])) target[name] = texts[key];
  };
  over(shown, "title", "title");
  over(shown, "instructions", "instructions");
  if (shown.scale && typeof shown.scale === "object") for (const grade of GRADES) over(shown.scale, grade, `scale.${grade}`);
  (shown.sections || []).forEach((section, index) => {
    over(section, "theme", `sections.${index}.theme`);
    for (const line of section.lines || []) {
      const prefix = `lines.${line.key}`;
      over(line, "label", `${prefix}.label`);
      over(line, "help", `${prefix}.help`);
      if (line.grades) for (const grade of GRADES) over(line.grades, grade, `${prefix}.grades.${grade}`);
      if (line.type === "choice" && Array.isArray(line.options)) {
        const labels = line.options.map((_option, n) => given(texts[`${prefix}.options.${n}`]));
        if (labels.some(Boolean)) line.option_labels = labels;
      }
    }
  });
  shown.shown_language = primaryLanguage(wanted);
  return shown;
}

// The agreement version as it reads in `wanted` (default: the page's language), a copy.
export function agreementInLanguage(record, wanted = pageLanguage()) {
  const texts = pickTexts(record, wanted);
  if (!texts) return record;
  const shown = structuredClone(record);
  for (const name of ["title", "summary"]) if (given(texts[name])) shown[name] = texts[name];
  for (const theme of shown.themes || []) {
    for (const name of ["name", "strapline"]) {
      const key = `themes.${theme.key}.${name}`;
      if (given(texts[key])) theme[name] = texts[key];
    }
  }
  for (const part of PARTS) {
    for (const item of shown[part] || []) {
      const key = `${part}.${item.key}.text`;
      if (given(texts[key])) item.text = texts[key];
    }
  }
  shown.shown_language = primaryLanguage(wanted);
  return shown;
}
