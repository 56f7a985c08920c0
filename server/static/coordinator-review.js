// The review pages without the mouse, and "select all on this page" for the queue.
// Everything here has a plain-HTML fallback: the keys' targets are real links and buttons
// with access keys, and the select-all box is sent with the form (the server then accepts
// every visit listed on the page), so the pages work the same without this module.

const NOT_TYPED = new Set(["checkbox", "radio", "button", "submit", "reset"]);

function typing(target) {
  // Letters typed into the reason box (or any field that takes text) are words, not commands.
  if (!(target instanceof HTMLElement)) {
    return false;
  }
  if (target instanceof HTMLInputElement) {
    return !NOT_TYPED.has(target.type);
  }
  return target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName);
}

function onKey(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) {
    return;
  }
  const target = document.querySelector(`[data-review-key="${CSS.escape(event.key)}"]`);
  if (!target) {
    return;
  }
  event.preventDefault();
  if (target instanceof HTMLInputElement && target.type === "radio") {
    // Flag: choose it, then the reason (flagging needs one).
    target.checked = true;
    const reason = document.getElementById("review-reason");
    (reason || target).focus();
    return;
  }
  target.click();
}

function selectAll() {
  const all = document.querySelector("[data-select-all]");
  if (!all) {
    return;
  }
  const boxes = () => Array.from(document.querySelectorAll("input[data-visit]"));
  all.addEventListener("change", () => {
    for (const box of boxes()) {
      box.checked = all.checked;
    }
  });
  for (const box of boxes()) {
    box.addEventListener("change", () => {
      // Once one row is unticked, "all on this page" is no longer what is meant.
      const ticked = boxes().filter((b) => b.checked).length;
      all.checked = ticked === boxes().length;
      all.indeterminate = ticked > 0 && !all.checked;
    });
  }
}

document.addEventListener("keydown", onKey);
selectAll();
