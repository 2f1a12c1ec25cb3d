"""Operator commands.

    python -m manage check                         validate settings and reach storage
    python -m manage token --user alice [--role admin|staff] [--ttl 86400]
    python -m manage poison list [--queue agent-actions]
    python -m manage poison replay [--queue agent-actions] [--limit N]
    python -m manage agent eval FILE.jsonl [--analyser configured|embedded]
    python -m manage analytics recompute [--since YYYY-MM-DD --until YYYY-MM-DD] [--dry-run]

Settings come from the environment, then local.settings.json (like the local host).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shared.local_settings import load_local_settings
from shared.storage.names import QUEUES

if TYPE_CHECKING:
    from shared.config import Settings

ROOT = Path(__file__).resolve().parent


def load_settings() -> Settings | None:
    """The settings, or None after printing each refused setting and why (never a value)."""
    from pydantic import ValidationError

    from shared.config import Settings, problems

    try:
        return Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        for line in problems(exc):
            print(f"settings: {line}")
        return None


def describe(exc: Exception) -> str:
    """A storage error without its message, which can carry a URL with a SAS token."""
    from azure.core.exceptions import HttpResponseError

    if isinstance(exc, HttpResponseError):
        return (
            f"{type(exc).__name__}: HTTP {exc.status_code} {getattr(exc, 'error_code', None) or ''}".strip()
        )
    return type(exc).__name__


def check() -> int:
    """Each problem on its own line; exit 1 when any. Creates missing tables and queues."""
    from shared.storage.clients import StorageClients
    from shared.storage.probe import StorageProbe
    from shared.storage.provision import provision

    settings = load_settings()
    if settings is None:
        return 1
    print(f"settings: ok (ENVIRONMENT={settings.environment}, version {settings.app_version})")
    clients = StorageClients.for_settings(settings)
    where = f"identity, {clients.identity.table_endpoint}" if clients.identity else "connection string"
    try:
        provision(clients)
    except Exception as exc:
        print(f"storage: cannot create the tables and queues ({where}): {describe(exc)}")
        return 1
    problem = StorageProbe(clients).ping()
    if problem:
        print(f"storage: unreachable ({where}): {problem}")
        return 1
    print(f"storage: ok ({where}; tables and queues exist)")
    return 0


def token(user: str, role: str | None, ttl: int) -> int:
    from shared.auth import mint_token

    settings = load_settings()
    if settings is None:
        return 1
    if not settings.auth_jwt_secret:
        print(
            "AUTH_JWT_SECRET is empty (RS256 via AUTH_JWKS_URL only): no HS256 token to mint", file=sys.stderr
        )
        return 1
    print(mint_token(user, [role] if role else [], settings.auth_jwt_secret, ttl))
    return 0


def poison(action: str, queue: str | None, limit: int) -> int:
    from shared.storage.clients import StorageClients
    from shared.storage.poison import PoisonQueues

    settings = load_settings()
    if settings is None:
        return 1
    queues = PoisonQueues(StorageClients.for_settings(settings))
    if action == "list":
        messages = queues.peek(queue)
        for m in messages:
            print(f"{m.queue}-poison  {m.id}  {m.inserted_at}  {m.content[:200]}")
        print(f"{len(messages)} poison message(s)")
    else:
        print(f"replayed {queues.replay(queue, limit)} message(s)")
    return 0


def agent_eval(path: Path, analyser: str) -> int:
    """The analyser and the decision table over a labelled file (shared/agent/evaluation.py): exit 1
    on any harmful auto-resolve, 2 when the file (or, for the configured analyser, the settings)
    cannot be used."""
    from shared.agent.evaluation import EXIT_BAD_FILE, run
    from shared.domain.decision import Thresholds

    if analyser == "embedded":
        from shared.agent.embedded import EmbeddedAgent

        agent = EmbeddedAgent()
        return run(path, agent, Thresholds(), sys.stdout, sys.stderr, f"embedded agent {agent.version}")
    from shared.container import analyser_for

    settings = load_settings()
    if settings is None:
        return EXIT_BAD_FILE
    configured = analyser_for(settings)
    thresholds = Thresholds(
        settings.confidence_high, settings.confidence_medium, settings.success_prob_auto_resolve
    )
    version = getattr(configured, "version", "")
    describe = f"configured analyser {type(configured).__name__} {version}".strip()
    return run(path, configured, thresholds, sys.stdout, sys.stderr, describe)


def analytics_recompute(since: str | None, until: str | None, dry_run: bool) -> int:
    """Rebuild the analytics tallies from the tickets and their history (shared/services/recompute.py):
    prints every difference; 0 when none, 1 when it found some (and, unless a dry run, repaired them)."""
    from datetime import date

    from shared.container import Container
    from shared.domain.decision import Thresholds
    from shared.services.recompute import recompute

    try:
        first = date.fromisoformat(since) if since else None
        last = date.fromisoformat(until) if until else None
    except ValueError as exc:
        print(f"analytics: bad date: {exc}", file=sys.stderr)
        return 2
    if first and last and first > last:
        print("analytics: --since is after --until", file=sys.stderr)
        return 2
    settings = load_settings()
    if settings is None:
        return 2
    c = Container.for_azure(settings)
    c.ensure_storage()
    thresholds = Thresholds(
        settings.confidence_high, settings.confidence_medium, settings.success_prob_auto_resolve
    )
    report = recompute(c.recording.inner, c.analytics, thresholds, c.clock, first, last, dry_run)
    for d in report.differences:
        print(f"{d.day}  {d.counter}  stored {d.stored}  recomputed {d.recomputed}")
    for event in report.repaired:
        print(f"repaired: recorded {event}")
    print(f"{report.tickets} ticket(s) recounted, {len(report.differences)} difference(s)")
    return 1 if report.differences else 0


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
    agent = commands.add_parser("agent", help="the agent's tools")
    agent_commands = agent.add_subparsers(dest="agent_command", required=True)
    evaluate = agent_commands.add_parser(
        "eval", help="run the analyser and the decision table over a labelled file (dev set format)"
    )
    evaluate.add_argument("file", type=Path)
    evaluate.add_argument("--analyser", choices=["configured", "embedded"], default="configured")
    stats = commands.add_parser("analytics", help="recompute the analytics tallies and repair them")
    stats.add_argument("action", choices=["recompute"])
    stats.add_argument("--since", help="first UTC day, YYYY-MM-DD (default: every day)")
    stats.add_argument("--until", help="last UTC day, YYYY-MM-DD (default: every day)")
    stats.add_argument("--dry-run", action="store_true", help="report the differences, repair nothing")
    args = parser.parse_args(argv)
    load_local_settings(ROOT)  # never on an Azure host, which does not read that file either
    if args.command == "check":
        return check()
    if args.command == "poison":
        return poison(args.action, args.queue, args.limit)
    if args.command == "agent":
        return agent_eval(args.file, args.analyser)
    if args.command == "analytics":
        return analytics_recompute(args.since, args.until, args.dry_run)
    return token(args.user, None if args.role == "user" else args.role, args.ttl)


if __name__ == "__main__":
    sys.exit(main())
