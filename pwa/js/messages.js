// Every string a person reads in the field app, looked up by id.
// Add a language by adding a catalogue with the same ids; English fills any gap.

export const CATALOGUES = {
  en: {
    app_name: "Kerbside",
    skip: "Skip to content",
    loading: "Loading…",
    nav_label: "Field app",
    nav_home: "Home",
    nav_deal: "The Deal",
    nav_mine: "My visits",
    nav_settings: "Settings",
    waiting: "Waiting to send: {count} (oldest {age})",
    nothing_waiting: "Nothing waiting to send",
    last_synced: "Last synced {time}",
    never_synced: "Not synced yet",
    unsent_warning: "Some visits have not been sent for over 3 days. Find a signal, or export them for your coordinator.",
    offline: "No signal: your work is kept on this phone.",
    send_now: "Send now",
    sending: "Sending…",
    retry_later: "Could not send yet; trying again by itself.",
    update_available: "Update available",
    update_reload: "Reload to update",
    ready_offline: "Ready to work offline",
    join_title: "Join",
    join_intro: "Enter the invite code your coordinator gave you. You need a signal once; after that the app works without one.",
    invite_code: "Invite code",
    device_name: "Name for this phone (optional)",
    join_button: "Join",
    scan_qr: "Scan the QR code",
    scan_failed: "No invite code found in that picture. Type the code instead.",
    join_offline: "You need a signal to join. Try again when you are online.",
    join_failed: "That code did not work: {message}",
    join_again: "This phone needs to join again: {message}",
    join_again_button: "Join again",
    update_app: "The server needs a newer app. Update the app; nothing on this phone is lost.",
    update_app_button: "Update the app",
    update_checking: "Looking for the newer app…",
    update_offline: "You need a signal to update the app. Your visits are kept.",
    update_none_yet: "No newer app yet. Your visits are kept and will be sent once the server accepts this app.",
    could_not_send: "This visit could not be sent. Export it for your coordinator.",
    try_again: "Try sending it again",
    home_title: "Hello, {name}",
    start_title: "Start a new one",
    new_street: "Street monitoring visit",
    new_checklist: "Agreement checklist",
    new_shop: "Mystery shop",
    no_forms: "Your forms have not arrived yet. They come with the next sync.",
    drafts_title: "Drafts",
    no_drafts: "No drafts.",
    attention_title: "Needs attention",
    attention_count: "Needs attention: {count}",
    no_attention: "Nothing needs attention.",
    attention_item: "{title} — {site}",
    server_said: "The server said: {message}",
    conflict_said: "Someone changed this first: {message}",
    notices_title: "Messages",
    form_site: "Site",
    site_search: "Find a site by name",
    site_nearest: "Nearest sites to me",
    site_new: "A new site not on the list",
    site_new_name: "Name of the new site",
    site_none_found: "No site matches. Check the spelling, or add it as a new site.",
    site_locating: "Finding where you are…",
    site_no_location: "Your location is not available. Search by name instead.",
    site_distance: "{name} ({metres} m)",
    site_chosen: "Chosen: {name}",
    observed_at: "Date and time of the visit",
    grade_legend: "{label}",
    add_note_photo: "Add a note or photo",
    note: "Note",
    comment: "Comment",
    photo: "Add a photo",
    photo_saved: "Photo {number} kept",
    photo_alt: "Photo {number} for {label}",
    remove_photo: "Remove photo {number}",
    photo_failed: "That photo could not be read. Try another.",
    kept: "Kept",
    partly: "Partly kept",
    not_kept: "Not kept",
    cant_tell: "Can't tell",
    phone: "Phone",
    online: "Online",
    in_person: "In person",
    yes: "Yes",
    option_partly: "Partly",
    no: "No",
    general_notes: "Anything else (optional)",
    save: "Save and send",
    saved: "Saved. It will be sent by itself when there is a signal.",
    delete_draft: "Delete this draft",
    confirm_delete_draft: "Delete this draft? This cannot be undone.",
    autosaved: "Draft kept on this phone",
    errors_title: "Some answers are missing",
    needs_grade: "Choose one grade for this line.",
    needs_answer: "This needs an answer.",
    needs_site: "Choose a site, or give the new site a name.",
    needs_time: "Give the date and time of the visit.",
    form_missing: "This form version is not on this phone. Sync, then try again.",
    our_part: "Our part (the council and partners)",
    your_part: "Your part (residents)",
    standards: "Service standards",
    themes: "Themes",
    you_said_we_did: "You said, we did",
    no_actions: "No actions yet.",
    no_agreement: "The agreement has not arrived yet. It comes with the next sync.",
    status_open: "Open",
    status_acknowledged: "Acknowledged",
    status_in_progress: "In progress",
    status_done: "Done",
    status_not_doing: "Not doing",
    action_reason: "Why: {reason}",
    mine_title: "My visits",
    mine_none: "Nothing yet.",
    mine_waiting: "Waiting to send",
    mine_received: "Received {time}",
    review_pending: "waiting for review",
    review_accepted: "accepted",
    review_flagged: "flagged: {reason}",
    settings_title: "Settings",
    signed_in_as: "Signed in as {name} on {device}",
    storage_title: "Storage on this phone",
    storage_persisted: "This phone has promised to keep the app's data.",
    storage_refused: "The browser did not promise to keep the app's data; it may clear it if space runs low. Send often, or export.",
    storage_unknown: "This browser cannot promise to keep the app's data. Send often, or export.",
    export_title: "Export unsent",
    export_intro: "Download everything not yet sent (drafts, waiting items and those needing attention) as a file. Your coordinator can import it, or you can bring it back on a new phone.",
    export_button: "Download unsent work",
    sign_out_title: "Sign out",
    sign_out_intro: "On a shared phone, sign out when you finish. Visits waiting to send must be sent first, or exported.",
    sign_out_button: "Sign out",
    sign_out_blocked: "Visits not sent yet: {count}. Send them first, or export them and then sign out.",
    export_and_sign_out: "Export, then sign out",
    signed_out: "Signed out. This phone holds nothing of yours now.",
    version: "App version {version}",
    just_now: "just now",
    minutes: "{n} min",
    hours: "{n} hours",
    days: "{n} days",
    kind_street: "Street visit",
    kind_checklist: "Checklist",
    kind_mystery_shop: "Mystery shop",
    new_site_label: "{name} (new site)",
    unknown_site: "Unknown site",
    no_site: "No site",
    site_proposed_label: "{name} (proposed: waiting for your coordinator)",
    site_pending_edit_label: "{name} (your change: waiting for your coordinator)",
    notice_site_merged: "The site you proposed, “{site_name}”, is the same as “{target_name}”: your visits there now count for it.",
    notice_site_rejected: "The site you proposed, “{site_name}”, was not added: {reason} Your visits there are kept, with no site.",
    notice_site_edit_refused: "Your change to “{site_name}” was not made. {reason}",
    // Drafts listed by site and time; signing out with drafts; moving to a new phone.
    today_at: "today {time}",
    yesterday_at: "yesterday {time}",
    date_at: "{date} {time}",
    draft_summary: "{site}, {when}, {answered} of {lines} lines",
    draft_summary_short: "{site}, {when}",
    no_site_yet: "No site chosen yet",
    no_name_yet: "no name yet",
    no_time_yet: "no time given",
    draft_not_kept: "This draft could not be kept on the phone. Free some space on it, then try again.",
    sign_out_keep: "This phone still holds work that cannot be sent: drafts: {drafts}, needing attention: {attention}. Export it to keep it (you can bring it back on another phone), or sign out and delete it.",
    sign_out_discard: "Sign out and delete them",
    restore_title: "Move to a new phone",
    restore_intro: "On the new phone, join with a new invite code, then choose the file you exported on the old one. Your drafts, the visits waiting to send and those needing attention come back. Nothing is sent twice.",
    restore_file: "Export file from your old phone",
    restore_reading: "Reading the file…",
    restore_done: "Brought back: drafts: {drafts}, visits waiting to send: {outbox}, needing attention: {attention}. Already on this phone, so skipped: {skipped}.",
    restore_refused_other_person: "This file holds another volunteer's work, so nothing was changed. Only the person who exported it can bring it back, on a phone they have joined. Your coordinator can import it instead.",
    restore_refused_not_export: "This is not an export file from the field app, so nothing was changed. Choose the file whose name starts with kerbside-unsent.",
    restore_refused_newer_version: "This file comes from a newer version of the app, so nothing was changed. Update the app, then try again.",
    restore_refused_damaged: "This file is damaged, so nothing was changed. Export again on the old phone if you can, or give the file to your coordinator.",
  },
};

function pickLanguage() {
  const wanted = (globalThis.navigator && navigator.languages) || [];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (CATALOGUES[base]) return base;
  }
  return "en";
}

export const LANGUAGE = pickLanguage();

// Whether the catalogues hold `id` (a server message with a known code is shown in the phone's language).
export function has(id) {
  return Boolean((CATALOGUES[LANGUAGE] && CATALOGUES[LANGUAGE][id]) || CATALOGUES.en[id]);
}

export function t(id, values = {}) {
  const text = (CATALOGUES[LANGUAGE] && CATALOGUES[LANGUAGE][id]) || CATALOGUES.en[id] || id;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

export function ageText(ms) {
  const minutes = Math.floor(ms / 60000);
  if (minutes < 1) return t("just_now");
  if (minutes < 60) return t("minutes", { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return t("hours", { n: hours });
  return t("days", { n: Math.floor(hours / 24) });
}

export function clockText(when) {
  const moment = new Date(when);
  const sameDay = new Date().toDateString() === moment.toDateString();
  const time = moment.toLocaleTimeString(LANGUAGE, { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${moment.toLocaleDateString(LANGUAGE, { day: "numeric", month: "short" })} ${time}`;
}
