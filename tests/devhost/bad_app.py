"""An app the Azure host would serve ambiguously: devhost refuses to start it."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="tickets/{id}", methods=["GET"])
def tickets_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("by id")


@app.route(route="tickets/list", methods=["GET"])  # "list" matches {id} too
def tickets_list(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("list")
