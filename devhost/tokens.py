"""Dev bearer tokens (a user and an admin) with curl examples, and the web client's dev login,
printed at startup."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("devhost")

USER, ADMIN = "dev-user", "dev-admin"
LOGIN_USER = "dev-user@example.com"  # any e-mail logs in; this one is only an example


def print_tokens(base_url: str, console: bool = False) -> None:
    """The dev tokens; with `console` (the app serves `/console/`), a link that opens it signed in."""
    secret = os.environ.get("AUTH_JWT_SECRET", "")
    try:
        from shared.auth import mint_token
    except ModuleNotFoundError as exc:
        if exc.name not in ("shared", "shared.auth"):
            raise
        log.warning("shared.auth is not importable; no dev tokens printed")
        return
    if not secret:
        log.warning("AUTH_JWT_SECRET is not set; no dev tokens printed")
        return
    user = mint_token(USER, [], secret)
    admin = mint_token(ADMIN, ["admin"], secret)
    print(
        f"""
Dev tokens (valid 7 days). Paste into your shell:

  export USER_TOKEN={user}
  export ADMIN_TOKEN={admin}

  curl -s -X POST {base_url}/tickets/ -H "Authorization: Bearer $USER_TOKEN" \\
       -H "Content-Type: application/json" -d '{{"issue_type": "VPN", "description": "VPN will not connect"}}'
  curl -s {base_url}/tickets/ -H "Authorization: Bearer $USER_TOKEN"
  curl -s {base_url}/agent/controls/ -H "Authorization: Bearer $ADMIN_TOKEN"
""",
        flush=True,
    )
    if console:
        print(console_links(base_url, user, admin), flush=True)
    print_dev_login()


def console_links(base_url: str, user: str, admin: str) -> str:
    """Links that open the operations console signed in. The token rides in the fragment (`#token=`),
    which the browser never sends: it reaches no server log, and the page moves it to the tab's
    sessionStorage and out of the address bar."""
    return f"""Operations console, ready to use (open in a browser on this machine):
  admin: {base_url}/console/#token={admin}
  user:  {base_url}/console/#token={user}
"""


def dev_login_text(env: dict[str, str]) -> str | None:
    """What the web client's login takes (SPEC §4), from the settings as the app reads them;
    None outside ENVIRONMENT=local, where the login routes answer 404."""
    from shared.config import DEV_LOGIN_PASSWORD

    if (env.get("ENVIRONMENT") or "local").strip() != "local":
        return None
    password = env.get("DEV_LOGIN_PASSWORD") or DEV_LOGIN_PASSWORD
    admins = [e.strip() for e in env.get("DEV_ADMIN_EMAILS", "").split(",") if e.strip()]
    admin_line = (
        f"  admin:    {admins[0]} / {password}"
        if admins
        else "  admin:    none (list e-mails in DEV_ADMIN_EMAILS)"
    )
    return f"""Dev login for the web app (local only; any e-mail, this password):
  user:     {LOGIN_USER} / {password}
{admin_line}
"""


def print_dev_login() -> None:
    text = dev_login_text(dict(os.environ))
    if text:
        print(text, flush=True)
