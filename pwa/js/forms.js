// Forms drawn from their cached definitions: street monitoring, agreement checklist, mystery shop.

import { h, uniqueId } from "./dom.js";
import { t } from "./messages.js";
import { keepPhoto } from "./photos.js";
import { isoWithOffset } from "./outbox.js";
import { GRADES, KEPT_VALUES } from "./protocol.js";
const OPTION_MESSAGES = { phone: "phone", online: "online", in_person: "in_person", yes: "yes", partly: "option_partly", no: "no" };

export function formLines(definition) {
  return definition.sections.flatMap((section) => section.lines);
}

function isRequired(definition, line) {
  return !line.optional || (definition.kind === "street" && line.type === "grade");
}

// An answer's label: the version's translation of it (content.js), else the app's own word for it, else the option.
function optionLabel(value, line, index) {
  const translated = line && line.option_labels && line.option_labels[index];
  if (translated) return translated;
  return OPTION_MESSAGES[value] ? t(OPTION_MESSAGES[value]) : value;
}

function radioChoice(name, value, checked, labelChildren, className) {
  return h("label", { class: className }, h("input", { type: "radio", name, value, checked }), ...labelChildren);
}

function photoList(draft, line, blobUrl, onRemove) {
  const photos = (draft.answers[line.key] && draft.answers[line.key].photos) || [];
  return h("ul", { class: "photos" }, photos.map((sha, index) => h("li", {},
    h("img", { src: blobUrl(sha), alt: t("photo_alt", { number: index + 1, label: line.label }), width: 96, height: 72 }),
    h("button", { type: "button", class: "small", onclick: () => onRemove(line.key, sha) }, t("remove_photo", { number: index + 1 })))));
}

function extras(draft, line, context) {
  const answer = draft.answers[line.key] || {};
  const noteId = uniqueId("note");
  const photoId = uniqueId("photo");
  const open = Boolean(answer.note || (answer.photos && answer.photos.length));
  const noteLabel = line.type === "kept" ? t("comment") : t("note");
  return h("details", { class: "extras", open },
    h("summary", {}, t("add_note_photo")),
    h("label", { for: noteId }, noteLabel),
    h("textarea", { id: noteId, rows: 2, "data-line": line.key, "data-field": "note", value: answer.note || "" }),
    h("label", { for: photoId, class: "photo-label" }, t("photo")),
    h("input", { id: photoId, type: "file", accept: "image/*", capture: "environment", "data-line": line.key, "data-field": "photo" }),
    photoList(draft, line, context.blobUrl, context.removePhoto));
}

function lineField(definition, draft, line, context) {
  const answer = draft.answers[line.key] || {};
  const name = `line-${line.key}`;
  const errorId = `error-${line.key}`;
  const legend = h("legend", {}, line.label, isRequired(definition, line) ? "" : h("span", { class: "hint" }, " (optional)"));
  const error = h("p", { id: errorId, class: "field-error", hidden: true });
  let body;
  if (line.type === "grade") {
    body = h("div", { class: "grades" }, GRADES.map((grade) => radioChoice(name, grade, answer.grade === grade,
      [h("span", { class: `letter grade-${grade}` }, grade), h("span", { class: "wording" }, line.grades[grade])], "choice grade")));
  } else if (line.type === "kept") {
    body = h("div", { class: "options" }, KEPT_VALUES.map((value) => radioChoice(name, value, answer.value === value, [h("span", {}, t(value))], "choice")));
  } else if (line.type === "choice") {
    body = h("div", { class: "options" }, line.options.map((value, index) => radioChoice(name, value, answer.value === value, [h("span", {}, optionLabel(value, line, index))], "choice")));
  } else if (line.type === "text") {
    const id = uniqueId("text");
    return h("div", { class: "line text-line", id: `line-${line.key}` },
      h("label", { for: id }, line.label),
      h("textarea", { id, rows: 4, "data-line": line.key, "data-field": "value", value: answer.value || "", "aria-describedby": errorId }),
      error);
  } else {
    const id = uniqueId("when");
    return h("div", { class: "line", id: `line-${line.key}` },
      h("label", { for: id }, line.label),
      h("input", { id, type: "datetime-local", "data-line": line.key, "data-field": "value", value: (answer.value || "").slice(0, 16), "aria-describedby": errorId }),
      error);
  }
  const fieldset = h("fieldset", { class: "line", id: `line-${line.key}`, "data-line": line.key, "aria-describedby": errorId }, legend, error, body);
  if (line.type === "grade" || line.type === "kept") fieldset.append(extras(draft, line, context));
  return fieldset;
}

export function renderForm(definition, draft, context) {
  const sections = definition.sections.map((section) => h("section", { class: "form-section" },
    h("h2", {}, section.theme),
    section.lines.map((line) => lineField(definition, draft, line, context))));
  return h("div", { class: "form-body" },
    definition.instructions ? h("p", { class: "instructions" }, definition.instructions) : null,
    sections);
}

// Read one change of the form into the draft; returns true when the draft changed.
export async function readChange(draft, target) {
  const radio = target.type === "radio" && target.name.startsWith("line-");
  if (radio) {
    const key = target.name.slice(5);
    const answer = { ...(draft.answers[key] || {}) };
    if (target.closest(".grades")) answer.grade = target.value;
    else answer.value = target.value;
    draft.answers[key] = answer;
    return true;
  }
  const key = target.dataset && target.dataset.line;
  if (!key) return false;
  const answer = { ...(draft.answers[key] || {}) };
  if (target.dataset.field === "photo") {
    const file = target.files && target.files[0];
    if (!file) return false;
    const sha = await keepPhoto(file);
    answer.photos = [...(answer.photos || []).filter((known) => known !== sha), sha];
    target.value = "";
  } else if (target.dataset.field === "value" && target.type === "datetime-local") {
    answer.value = target.value ? isoWithOffset(target.value) : "";
  } else {
    answer[target.dataset.field] = target.value;
  }
  draft.answers[key] = answer;
  return true;
}

// Answers the form still needs, keyed by line: what to say next to each.
export function missingAnswers(definition, draft) {
  const missing = {};
  for (const line of formLines(definition)) {
    if (!isRequired(definition, line)) continue;
    const answer = draft.answers[line.key] || {};
    const given = line.type === "grade" ? answer.grade : String(answer.value || "").trim();
    if (!given) missing[line.key] = line.type === "grade" ? t("needs_grade") : t("needs_answer");
  }
  return missing;
}
