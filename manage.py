"""Operator commands.

    python -m manage check                         validate settings and reach storage
    python -m manage token --user alice [--role admin|staff] [--ttl 86400]
    python -m manage poison list [--queue agent-actions]
    python -m manage poison replay [--queue agent-actions] [--limit N]

Settings come from the environment, then local.settings.json (like the local host).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from shared.storage.provision import QUEUES

ROOT = Path(__file__).resolve().parent


def load_local_settings() -> None:
    path = ROOT / "local.settings.json"
    if path.exists():
        for key, value in json.loads(path.read_text()).get("Values", {}).items():
            os.environ.setdefault(key, str(value))


def check() -> int:
    """Each problem on its own line; exit 1 when any."""
    from pydantic import ValidationError

    from shared.config import Settings
    from shared.storage.clients import StorageClients
    from shared.storage.probe import StorageProbe
    from shared.storage.provision import provision

    try:
        settings = Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            print(f"settings: {where + ': ' if where else ''}{error['msg']}")
        return 1
    print(f"settings: ok (ENVIRONMENT={settings.environment}, version {settings.app_version})")
    try:
        provision(settings.storage_connection)
    except Exception as exc:
        print(
            f"storage: cannot provision tables and queues: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        )
        return 1
    problem = StorageProbe(StorageClients(settings.storage_connection)).ping()
    if problem:
        print(f"storage: unreachable ({problem})")
        return 1
    print("storage: ok (tables and queues provisioned)")
    return 0


def token(user: str, role: str | None, ttl: int) -> int:
    from shared.auth import mint_token
    from shared.config import Settings

    settings = Settings()  # type: ignore[call-arg]
    print(mint_token(user, [role] if role else [], settings.auth_jwt_secret, ttl))
    return 0


def poison(action: str, queue: str | None, limit: int) -> int:
    from shared.config import Settings
    from shared.storage.clients import StorageClients
    from shared.storage.poison import PoisonQueues

    queues = PoisonQueues(StorageClients(Settings().storage_connection))  # type: ignore[call-arg]
    if action == "list":
        messages = queues.peek(queue)
        for m in messages:
            print(f"{m.queue}-poison  {m.id}  {m.inserted_at}  {m.content[:200]}")
        print(f"{len(messages)} poison message(s)")
    else:
        print(f"replayed {queues.replay(queue, limit)} message(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="manage", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="validate settings and reach storage")
    tok = commands.add_parser("token", help="mint a dev bearer token")
    tok.add_argument("--user", required=True)
    tok.add_argument("--role", choices=["user", "staff", "admin"])
    tok.add_argument("--ttl", type=int, default=7 * 86400, help="seconds (default 7 days)")
    bad = commands.add_parser("poison", help="list or replay poison messages")
    bad.add_argument("action", choices=["list", "replay"])
    bad.add_argument("--queue", choices=list(QUEUES), help="one queue (default: all)")
    bad.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args(argv)
    load_local_settings()
    if args.command == "check":
        return check()
    if args.command == "poison":
        return poison(args.action, args.queue, args.limit)
    return token(args.user, None if args.role == "user" else args.role, args.ttl)


if __name__ == "__main__":
    sys.exit(main())
