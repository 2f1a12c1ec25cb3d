"""Dev bearer tokens (a user and an admin) with curl examples, printed at startup."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("devhost")

USER, ADMIN = "dev-user", "dev-admin"


def print_tokens(base_url: str) -> None:
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
