"""marshmallow's own messages ("Missing data for required field.") in the reader's language.

marshmallow words its errors in English and fills them in with `str.format`. `install()`
replaces each default message, once, with a `Message`: a str that looks itself up in the
catalogue when it is filled in during a request, so the field errors a volunteer reads under
"Needs attention" (or a client gets in an error envelope) follow the request's language like
every other string. Filled in outside a request (a schema built at import time words its
bounds then), a Message stays a Message, and is looked up later as the whole sentence.

The msgids are listed in `MARSHMALLOW_MESSAGES` for `pybabel extract`; a test checks that
the list holds every default message of the installed marshmallow.
"""

from __future__ import annotations

import inspect

from flask import has_request_context
from flask_babel import gettext
from marshmallow import Schema, fields, validate


class Message(str):
    """A message text that is translated when it is filled in, in the request's language."""

    def format(self, *args, **kwargs):
        if not has_request_context():
            return Message(str.format(self, *args, **kwargs))
        return gettext(str(self)).format(*args, **kwargs)


def N_(text: str) -> str:
    """Marks `text` for the catalogue without translating it."""
    return text


MARSHMALLOW_MESSAGES = (
    N_('"{input}" cannot be formatted as a date.'),
    N_('"{input}" cannot be formatted as a {obj_type}.'),
    N_("Field may not be null."),
    N_("Invalid input type."),
    N_("Invalid input."),
    N_("Invalid type."),
    N_("Invalid value."),
    N_("Length must be between {min} and {max}."),
    N_("Length must be {equal}."),
    N_("Longer than maximum length {max}."),
    N_("Missing data for required field."),
    N_("Must be equal to {other}."),
    N_("Must be one of: {choices}."),
    N_("Must be {max_op} {{max}}."),
    N_("Must be {min_op} {{min}} and {max_op} {{max}}."),
    N_("Must be {min_op} {{min}}."),
    N_("Not a valid IP address."),
    N_("Not a valid IP interface."),
    N_("Not a valid IPv4 address."),
    N_("Not a valid IPv4 interface."),
    N_("Not a valid IPv6 address."),
    N_("Not a valid IPv6 interface."),
    N_("Not a valid URL."),
    N_("Not a valid UUID."),
    N_("Not a valid boolean."),
    N_("Not a valid date."),
    N_("Not a valid email address."),
    N_("Not a valid integer."),
    N_("Not a valid list."),
    N_("Not a valid mapping type."),
    N_("Not a valid number."),
    N_("Not a valid period of time."),
    N_("Not a valid string."),
    N_("Not a valid tuple."),
    N_("Not a valid utf-8 string."),
    N_("Not a valid {awareness} {obj_type}."),
    N_("Not a valid {obj_type}."),
    N_("Number too large."),
    N_("One or more of the choices you made was in: {values}."),
    N_("One or more of the choices you made was not in: {choices}."),
    N_("Shorter than minimum length {min}."),
    N_("Special numeric values (nan or infinity) are not permitted."),
    N_("String does not match expected pattern."),
    N_("Unknown field."),
    N_("greater than"),
    N_("greater than or equal to"),
    N_("less than"),
    N_("less than or equal to"),
    N_("{input!r} cannot be formatted as a timedelta."),
    # A Range fills in its bounds' words when it is built: these are the sentences it makes.
    N_("Must be greater than or equal to {min}."),
    N_("Must be greater than {min}."),
    N_("Must be less than or equal to {max}."),
    N_("Must be less than {max}."),
    N_("Must be greater than or equal to {min} and less than or equal to {max}."),
    N_("Must be greater than or equal to {min} and less than {max}."),
    N_("Must be greater than {min} and less than or equal to {max}."),
    N_("Must be greater than {min} and less than {max}."),
)


def _validator_message_names(cls) -> list[str]:
    return [name for name, value in vars(cls).items()
            if isinstance(value, str) and (name == "default_message" or name.startswith("message_"))]


def default_messages() -> set[str]:
    """Every default message of the installed marshmallow (what the catalogue must cover)."""
    found = set(Schema._default_error_messages.values())
    for _name, cls in inspect.getmembers(fields, inspect.isclass):
        found.update(cls.__dict__.get("default_error_messages", {}).values())
    for _name, cls in inspect.getmembers(validate, inspect.isclass):
        found.update(getattr(cls, name) for name in _validator_message_names(cls))
    return {str(text) for text in found}


def translated(messages):
    """A marshmallow error structure with the messages it used as they are (never filled in) translated."""
    if isinstance(messages, dict):
        return {key: translated(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return [translated(value) for value in messages]
    if isinstance(messages, Message) and has_request_context():
        return gettext(str(messages))
    return messages


def install() -> None:
    """Make marshmallow's default messages translatable; before any field is built, and idempotent."""
    Schema._default_error_messages = {key: Message(text) for key, text in Schema._default_error_messages.items()}
    for _name, cls in inspect.getmembers(fields, inspect.isclass):
        own = cls.__dict__.get("default_error_messages")
        if own:
            cls.default_error_messages = {key: Message(text) for key, text in own.items()}
    for _name, cls in inspect.getmembers(validate, inspect.isclass):
        for name in _validator_message_names(cls):
            setattr(cls, name, Message(getattr(cls, name)))
