"""Operations: health (`/api/health/`)."""

from __future__ import annotations

import azure.functions as func

from functions.http import Call, endpoint, json_response
from shared.errors import Unauthenticated

bp = func.Blueprint()


@bp.function_name("ops_health")
@bp.route(route="health", methods=["GET"])
@endpoint
def ops_health(call: Call) -> func.HttpResponse:
    """GET /api/health/ — anyone; staff get the details."""
    try:
        caller = call.caller if call.req.headers.get("Authorization") else None
    except Unauthenticated:
        caller = None
    report = call.container.health.report(caller)
    return json_response(report, 200 if report["status"] == "ok" else 503)
