"""What every admin dashboard page shares: rendering with strict security headers, and error pages.

Pages are server-rendered Jinja2 (autoescaped), with no script at all and nothing loaded from
elsewhere: the policy below allows only our own stylesheet, forms posting to ourselves, and frames of
our own summary preview. No page may itself be framed (clickjacking).
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, render_template

from integration.auth.admin_session import csrf_token

PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def protect(response: Response) -> Response:
    """Add the page headers, leaving any a view set itself (the framed preview has its own)."""
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def page(template: str, status: int = 200, **context: Any) -> Response:
    session = g.get("admin_session")
    response = Response(
        render_template(
            f"admin/{template}",
            actor=session.actor if session else None,
            csrf_token=csrf_token() if session else "",
            **context,
        ),
        status=status,
        mimetype="text/html",
    )
    return protect(response)


def error_page(status: int, message: str) -> Response:
    return page("error.html", status, code=status, message=message)
