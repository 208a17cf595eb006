"""Reading the console's HTML forms: a bounded URL-encoded body, and fields checked with one message each."""

from __future__ import annotations

from urllib.parse import parse_qsl

import falcon

from ..errors import InvalidInput

#: Largest form body the console reads (a note or comment is a few KB; nothing needs more).
MAX_FORM_BYTES = 64 * 1024
#: The one content type a browser's form sends here.
FORM_TYPE = "application/x-www-form-urlencoded"


def read_form(req: falcon.Request) -> dict[str, str]:
    """The form fields of a POST (first value of each); empty for another content type.

    An empty or foreign body has no ``csrf_token``, so the gate refuses it with 403.

    Raises:
      falcon.HTTPContentTooLarge: the body exceeds :data:`MAX_FORM_BYTES` (413).
    """
    content_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if content_type != FORM_TYPE:
        return {}
    raw = req.bounded_stream.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        raise falcon.HTTPContentTooLarge(
            title="Form too large", description=f"a form is at most {MAX_FORM_BYTES} bytes"
        )
    fields: dict[str, str] = {}
    for name, value in parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True):
        fields.setdefault(name, value.replace("\x00", ""))
    return fields


def text(form: dict[str, str], name: str, *, required: bool = False, max_length: int = 2000) -> str | None:
    """The trimmed text field ``name``; None when blank and not required.

    Raises:
      InvalidInput: it is required and blank, or longer than ``max_length`` characters.
    """
    value = (form.get(name) or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"{name.replace('_', ' ')} is required", field=name)
        return None
    if len(value) > max_length:
        raise InvalidInput(f"{name.replace('_', ' ')} is at most {max_length} characters", field=name)
    return value


def integer(form: dict[str, str], name: str, *, default: int, low: int, high: int) -> int:
    """The integer field ``name`` within ``low..high``; ``default`` when blank.

    Raises:
      InvalidInput: not an integer, or out of range.
    """
    value = (form.get(name) or "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name.replace('_', ' ')} must be a whole number, got {value!r}", field=name) from None
    if not low <= number <= high:
        raise InvalidInput(f"{name.replace('_', ' ')} must be between {low} and {high}", field=name)
    return number
