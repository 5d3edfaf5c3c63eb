"""Numbers from forms and from API clients, checked by us so a bad value gets a one-line reason.

Gradio's own Number and Slider turn an API client's "abc" into a generic "upstream app raised an
exception" before our callback runs, and round 1.5 to 2 without a word; these pass the raw value on.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from medsynth.generation.engine import RequestError


class CheckedNumber(gr.Number):
    """gr.Number whose value reaches the callback as sent (the callback checks it)."""

    is_template = True  # the browser draws it as a Number

    def preprocess(self, payload: Any) -> Any:
        return payload


class CheckedRadio(gr.Radio):
    """gr.Radio whose value reaches the callback as sent: an API client's value outside the choices gets the
    callback's own one-line reason, not Gradio's "Value: 7 (type: <class 'int'>) is not in the list of choices"."""

    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload


class CheckedDropdown(gr.Dropdown):
    """gr.Dropdown whose value reaches the callback as sent (the callback checks it, in the app's words)."""

    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload


class CheckedSlider(gr.Slider):
    """gr.Slider whose value reaches the callback as sent (the callback checks it)."""

    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload


def whole_number(name: str, value: Any, default: int | None = None) -> int | None:
    """A whole number from a form or an API call; blank gives `default`."""
    number = _parsed_number(name, value, "a whole number")
    if number is None:
        return default
    if not number.is_integer():
        raise RequestError(f"{name} must be a whole number; got {value!r}")
    return int(number)


def real_number(name: str, value: Any, default: float | None = None) -> float | None:
    """A number from a form or an API call; blank gives `default`."""
    number = _parsed_number(name, value, "a number")
    return default if number is None else number


def _parsed_number(name: str, value: Any, what: str) -> float | None:
    """`value` as a float, None when blank; booleans, NaN and text that is no number are refused."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RequestError(f"{name} must be {what}; got {value!r}") from None
    if isinstance(value, bool) or number != number:  # NaN
        raise RequestError(f"{name} must be {what}; got {value!r}")
    return number
