"""Rate tab: a rater signs in with a study code, their id and their key, then rates one blinded image at a time.

Raters see the image (and the prompt when the study asks about alignment), their own progress and
their own earlier answers when they go back; never the image's source, class, provenance or anyone
else's answers. Every answer travels with the one-use ticket the server issued for that image.
"""

from __future__ import annotations

from html import escape
from typing import Any

import gradio as gr

from medsynth.studies import Answers, ItemView, OrderError, RaterSession, StudyError
from medsynth.studies.model import MAX_COMMENT_CHARS
from medsynth.ui.inputs import CheckedRadio
from medsynth.ui.study_place import StudyPlace
from medsynth.ui.text import user_error

RATE_CONCURRENCY = 16  # rating is a short database write; many raters at once must not queue behind generation

REALISM_CHOICES = [("1 · clearly not real", 1), ("2", 2), ("3", 3), ("4", 4), ("5 · indistinguishable from real", 5)]
ALIGNMENT_CHOICES = [("1 · does not match", 1), ("2", 2), ("3", 3), ("4", 4), ("5 · matches fully", 5)]
GUESS_CHOICES = [("Real", "real"), ("Synthetic", "synthetic")]
CONFIDENCE_CHOICES = [("1 · guessing", 1), ("2", 2), ("3", 3), ("4", 4), ("5 · certain", 5)]

KEYS_HELP = """
<details open><summary><b>Keyboard shortcuts</b></summary>
<table style="font-size:0.9em">
<tr><td><kbd>1</kbd>–<kbd>5</kbd></td><td>realism</td>
    <td><kbd>Shift</kbd>+<kbd>1</kbd>–<kbd>5</kbd></td><td>prompt alignment</td></tr>
<tr><td><kbd>R</kbd> / <kbd>S</kbd></td><td>real / synthetic</td>
    <td><kbd>Z</kbd> <kbd>X</kbd> <kbd>C</kbd> <kbd>V</kbd> <kbd>B</kbd></td><td>confidence 1–5</td></tr>
<tr><td><kbd>M</kbd></td><td>write a comment (<kbd>Esc</kbd> leaves it)</td>
    <td><kbd>Enter</kbd> (<kbd>Ctrl</kbd>+<kbd>Enter</kbd> in the comment)</td><td>submit and go on</td></tr>
<tr><td><kbd>P</kbd> / <kbd>N</kbd></td><td>previous / next image</td><td></td><td></td></tr>
</table></details>
"""

# one document-level listener (installed once per page), active only while the rating panel is shown
KEYBOARD_JS = """
if (!window.__medsynthRateKeys) {
  window.__medsynthRateKeys = true;
  const pick = (id, index) => {
    const input = document.querySelectorAll(`#${id} label input`)[index];
    if (!input || input.offsetParent === null) return false;
    input.click();
    return true;
  };
  const press = (id) => {
    const button = document.getElementById(id);
    if (!button || button.disabled) return false;
    button.click();
    return true;
  };
  const CONFIDENCE_KEYS = ['KeyZ', 'KeyX', 'KeyC', 'KeyV', 'KeyB'];
  document.addEventListener('keydown', (event) => {
    const panel = document.getElementById('rate-panel');
    if (!panel || panel.offsetParent === null) return;
    let target = event.target;
    // after signing in by keyboard the focus is still in a sign-in field: the first shortcut must not type there
    if (target && target.closest && target.closest('#rate-code, #rate-rater, #rate-key')) {
      target.blur();
      target = document.body;
    }
    const typing = target && (target.tagName === 'TEXTAREA' || target.isContentEditable ||
      (target.tagName === 'INPUT' && !['radio', 'checkbox'].includes(target.type)));
    if (typing) {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && panel.contains(target)) {
        event.preventDefault();
        target.blur();  // the next image's answers are keys again
        press('rate-submit');
      } else if (event.key === 'Escape') {
        target.blur();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // Enter on a focused button of the panel presses that button; anywhere else it submits
    if (target && target.tagName === 'BUTTON' && event.key === 'Enter' && panel.contains(target)) return;
    let handled = false;
    const digit = /^(Digit|Numpad)([1-5])$/.exec(event.code);
    if (digit) {
      handled = pick(event.shiftKey ? 'rate-alignment' : 'rate-realism', Number(digit[2]) - 1);
    } else if (!event.shiftKey) {
      const level = CONFIDENCE_KEYS.indexOf(event.code);
      if (level >= 0) handled = pick('rate-confidence', level);
      else if (event.code === 'KeyR') handled = pick('rate-guess', 0);
      else if (event.code === 'KeyS') handled = pick('rate-guess', 1);
      else if (event.code === 'KeyP') handled = press('rate-previous');
      else if (event.code === 'KeyN') handled = press('rate-next');
      else if (event.key === 'Enter') handled = press('rate-submit');
      else if (event.code === 'KeyM') {
        const box = document.querySelector('#rate-comment textarea');
        if (box) { box.focus(); handled = true; }
      }
    }
    if (handled) event.preventDefault();
  });
}
"""


def progress_html(view: ItemView) -> str:
    share = 100 * view.done / max(view.total, 1)
    where = "all done" if view.finished else f"image {view.position + 1} of {view.total}"
    return (
        f'<div id="rate-progress-bar" role="progressbar" aria-valuemin="0" aria-valuemax="{view.total}" aria-valuenow="{view.done}">'
        '<div style="background:#e9ecef;border-radius:6px;height:12px;overflow:hidden">'
        f'<div style="width:{share:.1f}%;background:#4c72b0;height:12px"></div></div>'
        f'<div style="font-size:0.9em;margin-top:4px">{view.done} of {view.total} rated · {where}</div></div>'
    )


def render(view: ItemView, status: str = "") -> list[Any]:
    """What the panel shows for one image (or the 'all done' view): image … status, as wired in build()."""
    previous = view.previous or Answers(None, None, None, None, None)
    if view.finished:
        status = (
            status
            + (" " if status else "")
            + f"**All {view.total} images rated — thank you!** Press ◀ Previous to revise an answer."
        )
    elif view.previous is not None:
        status = (
            status + (" " if status else "") + "You rated this image before; submitting replaces your earlier answer."
        )
    prompt = f"**Prompt:** {view.prompt}" if view.prompt and not view.finished else ""
    return [
        view.image_path,  # a frozen, metadata-free PNG named by its hash, served as a static file
        prompt,
        progress_html(view),
        view.ticket or "",
        gr.Radio(value=previous.realism, interactive=not view.finished),
        gr.Radio(value=previous.alignment, visible=view.asks_alignment, interactive=not view.finished),
        gr.Radio(value=previous.guess, interactive=not view.finished),
        gr.Radio(value=previous.confidence, interactive=not view.finished),
        previous.comment or "",
        status,
    ]


def _session(state: Any) -> tuple[RaterSession, int]:
    if not isinstance(state, dict) or not isinstance(state.get("session"), RaterSession):
        raise user_error("Sign in with your study code and rater id first.")
    return state["session"], int(state["position"])


def _show(place: StudyPlace, session: RaterSession, position: int | None, status: str = "") -> list[Any]:
    view = place.store.view(session, position)
    return [{"session": session, "position": view.position}, *render(view, status)]


def sign_in(place: StudyPlace, code: Any, rater: Any, key: Any = "") -> list[Any]:
    """Check the code, id and key; show the first image this rater has not rated (where they left off).

    With no id and no key, an open study hands out a fresh pseudonymous id and its key, shown once."""
    issued = None
    try:
        if not str(rater or "").strip() and not str(key or "").strip():
            session, issued = place.store.join(code)
        else:
            session = place.store.sign_in(code, rater, key)
        shown = _show(place, session, None)
    except StudyError as error:
        raise user_error(str(error)) from None
    done = shown[0]["position"]
    welcome = f"Signed in as **{escape(session.rater)}**." + (
        f" Welcome back: continuing after your {done} rated image(s)." if done else ""
    )
    if issued is not None:
        welcome += (
            f" Your rater id is **{escape(session.rater)}** and your key is `{issued}`: write both down, you need them "
            "to continue later (the key is shown only now)."
        )
    shown[-1] = welcome + (" " + shown[-1] if shown[-1] else "")
    return [*shown, gr.Column(visible=True), session.rater, issued if issued is not None else key]


RATE_TAB_ID = "rate"


def prefill(request: gr.Request) -> tuple[str, str, str, Any]:
    """An invite link (?study=CODE&rater=ID&key=KEY) fills the sign-in fields and opens the Rate tab: one click
    (Sign in) from the first image."""
    params = request.query_params if request is not None else {}
    tabs = gr.Tabs(selected=RATE_TAB_ID) if params.get("study") else gr.Tabs()
    return params.get("study", ""), params.get("rater", ""), params.get("key", ""), tabs


def submit(
    place: StudyPlace, state: Any, ticket: Any, realism: Any, alignment: Any, guess: Any, confidence: Any, comment: Any
) -> list[Any]:
    """Store (or replace) the answer for the image the ticket belongs to, then show the next image."""
    session, _ = _session(state)
    try:
        result = place.store.submit(session, ticket, Answers(realism, guess, confidence, alignment, comment))
        following = (
            place.store.order(session).index(result.item_id) + 1
        )  # after the image answered, wherever the state was
        return _show(
            place, session, following, "Saved (your earlier answer was replaced)." if result.updated else "Saved."
        )
    except StudyError as error:
        raise user_error(str(error)) from None


def move(place: StudyPlace, state: Any, step: int) -> list[Any]:
    """Go back to an image already rated, or forward up to the first unrated one."""
    session, position = _session(state)
    try:
        return _show(place, session, max(0, position + step))
    except OrderError:
        raise user_error("Answer this image first: you can go forward only to the next unrated image.") from None
    except StudyError as error:
        raise user_error(str(error)) from None


def build(place: StudyPlace) -> tuple:
    """The Rate tab's components and wiring (call inside a gr.Blocks context)."""
    # study images are frozen and blinded: serve them in place instead of copying each view to the cache
    gr.set_static_paths([place.images_dir])
    gr.Markdown(
        "Rate each image as you would judge a real case. You will not be told which images are real; "
        "answers are saved one image at a time, so you can leave and sign in again to continue.",
        elem_id="rate-intro",
    )
    with gr.Row():
        code = gr.Textbox(
            label="Study code", placeholder="e.g. K7QM2XPDHA", max_length=40, elem_id="rate-code", scale=2
        )
        rater = gr.Textbox(
            label="Rater id", placeholder="from your invite (empty: join an open study)", max_length=64,
            elem_id="rate-rater", scale=2,
        )  # fmt: skip
        key = gr.Textbox(
            label="Key", placeholder="from your invite", type="password", max_length=64, elem_id="rate-key", scale=2
        )
        enter = gr.Button("Sign in", variant="primary", elem_id="rate-sign-in", scale=1)
    state = gr.State(None)
    with gr.Column(visible=False, elem_id="rate-panel") as panel:
        progress = gr.HTML(elem_id="rate-progress")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                image = gr.Image(
                    type="filepath",
                    interactive=False,
                    show_label=False,
                    height=420,
                    buttons=["fullscreen"],
                    elem_id="rate-image",
                )
                prompt = gr.Markdown(elem_id="rate-prompt")
            with gr.Column(scale=2, min_width=280):
                realism = CheckedRadio(REALISM_CHOICES, label="How realistic is this image?", elem_id="rate-realism")
                alignment = CheckedRadio(
                    ALIGNMENT_CHOICES, label="How well does it match the prompt?", elem_id="rate-alignment"
                )
                guess = CheckedRadio(GUESS_CHOICES, label="Real or synthetic?", elem_id="rate-guess")
                confidence = CheckedRadio(CONFIDENCE_CHOICES, label="How sure are you?", elem_id="rate-confidence")
                # no max_length: the browser would cut a longer comment without a word; Submit refuses it instead
                comment = gr.Textbox(
                    label=f"Comment (optional, at most {MAX_COMMENT_CHARS:,} characters)",
                    lines=2,
                    elem_id="rate-comment",
                )
                with gr.Row(elem_id="rate-buttons"):  # one row on a phone too: Submit in reach, not three rows down
                    back = gr.Button("◀ Previous", elem_id="rate-previous", min_width=70)
                    go = gr.Button("Submit ▶", variant="primary", elem_id="rate-submit", min_width=90)
                    forward = gr.Button("Next ▷", elem_id="rate-next", min_width=70)
                status = gr.Markdown(elem_id="rate-status")
                gr.HTML(KEYS_HELP, js_on_load=KEYBOARD_JS, elem_id="rate-keys")
        ticket = gr.Textbox(visible="hidden", elem_id="rate-ticket")
    view_outputs = [state, image, prompt, progress, ticket, realism, alignment, guess, confidence, comment, status]
    options = dict(concurrency_limit=RATE_CONCURRENCY, concurrency_id="rate", show_progress="minimal")
    gr.on(
        [enter.click, code.submit, rater.submit, key.submit],
        lambda c, r, k: sign_in(place, c, r, k),
        [code, rater, key],
        [*view_outputs, panel, rater, key],
        api_name="rate_sign_in",
        **options,
    )
    go.click(
        lambda s, t, a, b, g, c, m: submit(place, s, t, a, b, g, c, m),
        [state, ticket, realism, alignment, guess, confidence, comment],
        view_outputs,
        api_name="rate_submit",
        **options,
    )
    back.click(lambda s: move(place, s, -1), state, view_outputs, api_name="rate_previous", **options)
    forward.click(lambda s: move(place, s, 1), state, view_outputs, api_name="rate_next", **options)
    return prefill, [code, rater, key]
