"""Rules for editable records: versioned patches merged field by field.

Every editable record carries `version` and `field_versions`, the version at which each
field last changed. A patch made against `base_version` is applied when the record is
still there, merged when none of its fields changed since, and otherwise is a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The action lifecycle ("you said, we did"). `not_doing` always needs a public reason.
ACTION_STATUSES = ("open", "acknowledged", "in_progress", "done", "not_doing")
ACTION_TRANSITIONS = {
    "open": {"acknowledged", "in_progress", "not_doing"},
    "acknowledged": {"in_progress", "done", "not_doing"},
    "in_progress": {"done", "not_doing"},
    "done": {"in_progress"},  # reopened when the problem comes back
    "not_doing": {"open"},  # reconsidered
}


@dataclass
class MergeResult:
    outcome: str  # "applied", "merged" or "conflict"
    values: dict = field(default_factory=dict)
    version: int = 0
    field_versions: dict = field(default_factory=dict)
    changed: tuple = ()


def merge_patch(values: dict, version: int, field_versions: dict, base_version: int, patch: dict) -> MergeResult:
    """Apply `patch` made against `base_version` to a record now at `version`."""
    if base_version > version:
        # A client cannot have seen a version the server never made.
        return MergeResult("conflict", values, version, field_versions)
    if base_version < version:
        touched_since = [key for key in patch if field_versions.get(key, 0) > base_version]
        if touched_since:
            return MergeResult("conflict", values, version, field_versions, tuple(touched_since))
    new_version = version + 1
    new_values = dict(values)
    new_field_versions = dict(field_versions)
    changed = []
    for key, value in patch.items():
        if new_values.get(key) != value:
            new_values[key] = value
            new_field_versions[key] = new_version
            changed.append(key)
    outcome = "applied" if base_version == version else "merged"
    return MergeResult(outcome, new_values, new_version, new_field_versions, tuple(changed))


def action_transition_error(current: str, new: str, reason: str | None) -> str | None:
    """Why an action may not move from `current` to `new`, or None when it may."""
    if new not in ACTION_STATUSES:
        return "unknown_status"
    if new != current and new not in ACTION_TRANSITIONS[current]:
        return "transition_not_allowed"
    if new == "not_doing" and not (reason or "").strip():
        return "reason_required"
    return None
