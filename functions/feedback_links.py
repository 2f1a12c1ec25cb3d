"""One-click answers: the follow-up's signed links open a small page (GET) whose one button
records the answer (POST). Public: the signed link, not a login, says who answers.

A GET never changes anything: link scanners (Outlook safe links) and chat unfurlers (Slack,
Teams) fetch every link they see, and would otherwise answer for the user. The pages are HTML
unless the client asks for JSON (Accept), self-contained (no external request, a strict CSP)
and never cached or referred (the URL is the credential).
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Annotated, Any

import azure.functions as func
from pydantic import BaseModel, BeforeValidator, ConfigDict

from functions.http import JSON_TYPE, PublicCall, api, json_response, prefers_json, problem
from shared.domain.feedback import FeedbackText, Score
from shared.domain.public import FeedbackRecorded
from shared.errors import AppError, ServiceUnavailable
from shared.services.links import LinkView

bp = func.Blueprint()


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


class LinkAnswerForm(BaseModel):
    """The page's form: the optional stars (empty or 0: none) and text; the answer is the link's."""

    model_config = ConfigDict(extra="forbid")

    satisfaction_score: Annotated[Score | None, BeforeValidator(_blank_is_none)] = None
    feedback_text: FeedbackText = ""


class LinkPreview(BaseModel):
    """What a link would record (GET, as JSON)."""

    ticket_id: int
    resolution_confirmed: bool
    expires_at: str


STYLE = "".join(
    (
        'body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;',
        "background:#f5f6f8;color:#1b1f24}",
        "main{max-width:32rem;margin:0 auto;padding:1.25rem}",
        "h1{font-size:1.4rem;line-height:1.3}",
        ".card{background:#fff;border-radius:.75rem;padding:1.25rem;",
        "box-shadow:0 1px 3px rgba(0,0,0,.12)}",
        "fieldset{border:0;padding:0;margin:1rem 0}",
        "legend,label.block{font-weight:600;display:block;margin-bottom:.4rem}",
        ".stars{display:flex;flex-wrap:wrap;gap:.4rem}",
        ".stars label{border:1px solid #8a94a3;border-radius:.5rem;padding:.45rem .7rem;",
        "min-width:2.75rem;text-align:center}",
        ".stars input{margin-right:.3rem}",
        "textarea{width:100%;box-sizing:border-box;min-height:6rem;font:inherit;padding:.5rem;",
        "border:1px solid #8a94a3;border-radius:.5rem}",
        "button{width:100%;font:inherit;font-weight:600;padding:.8rem;border:0;border-radius:.5rem;",
        "background:#0b57d0;color:#fff;cursor:pointer}",
        "button:focus-visible,input:focus-visible,textarea:focus-visible{outline:3px solid #f2a900;",
        "outline-offset:2px}",
        ".note{color:#4a5260;font-size:.9rem}",
    )
)
# The CSP admits exactly this style block (its hash) and nothing else: no script, no image, no
# font, no request anywhere; the form may post only back to this origin.
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}
ANSWERS = {True: "Yes, it works", False: "No, still broken"}


def page(title: str, body: str, status: int = 200) -> func.HttpResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{escape(title)} · ResolveMeQ</title>'
        f'<style>{STYLE}</style></head><body><main><div class="card">'
        f"<h1>{escape(title)}</h1>{body}</div></main></body></html>"
    )
    return func.HttpResponse(
        document, status_code=status, headers=dict(HEADERS), mimetype="text/html", charset="utf-8"
    )


def form_page(view: LinkView) -> func.HttpResponse:
    answer = ANSWERS[view.answer]
    effect = (
        "The ticket will be closed."
        if view.answer
        else "The ticket will be reopened and go to our support staff at high priority."
    )
    stars = ['<label><input type="radio" name="satisfaction_score" value="" checked>No rating</label>']
    stars += [
        f'<label><input type="radio" name="satisfaction_score" value="{n}">'
        f"{n} star{'s' if n > 1 else ''}</label>"
        for n in range(1, 6)
    ]
    body = (
        f"<p>Your answer for ticket <strong>#{view.ticket_id}</strong>: <strong>{answer}</strong>. "
        f"{effect}</p>"
        '<form method="post">'
        '<fieldset><legend id="stars">How happy are you with the fix? (optional)</legend>'
        f'<div class="stars" role="radiogroup" aria-labelledby="stars">{"".join(stars)}</div></fieldset>'
        '<label class="block" for="feedback_text">Anything to add? (optional)</label>'
        '<textarea id="feedback_text" name="feedback_text" maxlength="2000" rows="4"></textarea>'
        f'<p><button type="submit">Send: {answer}</button></p>'
        "</form>"
        '<p class="note">Nothing is recorded until you press the button. The link works once.</p>'
    )
    return page(f"Ticket #{view.ticket_id}: {answer}?", body)


def error_page(error: AppError, accept: str | None) -> func.HttpResponse:
    if prefers_json(accept):
        response = problem(error, accept)
    else:
        details = "".join(
            f"<li>{escape(str(e.get('loc', '')))}: {escape(str(e.get('msg', '')))}</li>"
            for e in error.extra.get("errors", [])
        )
        body = f"<p>{escape(error.detail)}</p>" + (f"<ul>{details}</ul>" if details else "")
        response = page(error.title, body, error.status)
    if isinstance(error, ServiceUnavailable) and error.retry_after:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


@api(bp, "feedback_link_page", "feedback/{token}", "GET", access="public", response=LinkPreview)
def feedback_link_page(call: PublicCall) -> func.HttpResponse:
    """GET /api/feedback/{token}/ — a one-click answer's page; reads only, changes nothing."""
    accept = call.req.headers.get("Accept")
    try:
        view = call.container.link_service.view(call.req.route_params["token"])
    except AppError as error:
        return error_page(error, accept)
    if prefers_json(accept):
        preview = LinkPreview(
            ticket_id=view.ticket_id, resolution_confirmed=view.answer, expires_at=view.expires_at.isoformat()
        )
        return json_response(preview, headers={"Cache-Control": "no-store"})
    return form_page(view)


@api(
    bp,
    "feedback_link_answer",
    "feedback/{token}",
    "POST",
    access="public",
    body=LinkAnswerForm,
    response=FeedbackRecorded,
)
def feedback_link_answer(call: PublicCall) -> func.HttpResponse:
    """POST /api/feedback/{token}/ — record a one-click answer (form or JSON), once, as the owner."""
    accept = call.req.headers.get("Accept")
    try:
        if JSON_TYPE.match(call.req.headers.get("Content-Type", "")):
            form = call.body(LinkAnswerForm)
        else:
            form = call.form(LinkAnswerForm)
        recorded = call.container.link_service.answer(
            call.req.route_params["token"], form.satisfaction_score, form.feedback_text
        )
    except AppError as error:
        return error_page(error, accept)
    if prefers_json(accept):
        return json_response(recorded, headers={"Cache-Control": "no-store"})
    body = f'<p>{escape(recorded.message)}</p><p class="note">You can close this page.</p>'
    return page("Thank you", body)
