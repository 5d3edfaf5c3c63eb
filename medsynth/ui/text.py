"""Words on screen: user text shown as text (never markup), user errors as one-line messages, ordinals.

Everything a person typed (findings, study titles, rater ids) goes through `plain` before it reaches a
Markdown component, and every refusal through `user_error`: the message is escaped, logged as one line,
and raised without the traceback Gradio prints for real faults.
"""

from __future__ import annotations

import html
import logging
import re

import gradio as gr

logger = logging.getLogger(__name__)

MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def plain(text: object) -> str:
    """`text` as Markdown that shows exactly these characters: HTML escaped, Markdown punctuation backslashed."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(str(text), quote=False))


def user_error(message: object) -> gr.Error:
    """A refusal the user can act on: one log line, no traceback, the message shown as text."""
    logger.info("user error: %s", message)
    return gr.Error(html.escape(str(message), quote=False), print_exception=False)


def warn(message: object) -> None:
    """A toast for a request that went through with a caveat (the text is escaped: it may quote user input)."""
    gr.Warning(html.escape(str(message), quote=False))


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 82nd, 103rd."""
    number = int(number)
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"
