"""A small FunctionApp for the devhost tests; it does not import the project's `shared` package."""

from __future__ import annotations

import json
import os
import time
import uuid

import azure.functions as func
from azure.data.tables import TableServiceClient

STORAGE = "AzureWebJobsStorage"
TABLE = "devhostsample"
QUEUE = "devhost-sample"
SLOW_QUEUE = "devhost-slow"
LATE_QUEUE = "devhost-late"  # nothing creates it before the host starts
os.environ.setdefault("SAMPLE_WORN_QUEUE", "devhost-worn")  # a binding expression, resolved at start

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def record(kind: str, **fields: object) -> None:
    client = TableServiceClient.from_connection_string(os.environ[STORAGE])
    entity = {"PartitionKey": kind, "RowKey": uuid.uuid4().hex, **fields}
    client.get_table_client(TABLE).create_entity(entity)


def as_json(body: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@app.route(route="items", methods=["GET"])
def items_list(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"route": "list", "params": dict(req.params)})


@app.route(route="items/{id:int}", methods=["GET", "DELETE"])
def items_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"route": "id", "id": req.route_params["id"]})


@app.route(route="items/special", methods=["GET"])  # "special" is no int: no overlap with {id:int}
def items_special(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"route": "special"})


@app.route(route="items/by-name/{name}", methods=["GET"])
def items_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"route": "name", "name": req.route_params["name"]})


@app.route(route="sleep", methods=["GET"])
def sleep(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(float(req.params["seconds"]))
    return as_json({"slept": req.params["seconds"]})


@app.route(route="echo/", methods=["POST"])
def echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    body = {
        "method": req.method,
        "url": req.url,
        "body": req.get_body().decode(),
        "header": req.headers.get("x-sample"),
        "invocation_id": context.invocation_id,
        "function_name": context.function_name,
    }
    return func.HttpResponse(
        json.dumps(body), status_code=201, headers={"X-Echo": "yes"}, mimetype="application/json"
    )


@app.route(route="async-hello", methods=["GET"])
async def async_hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"hello {req.params.get('who', 'world')}")


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret internal detail")


@app.queue_trigger(arg_name="msg", queue_name=QUEUE, connection=STORAGE)
def on_message(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode()
    record("queue", body=body, message_id=msg.id, dequeue_count=msg.dequeue_count)
    if body == "fail":
        raise ValueError("asked to fail")
    if body.startswith("sleep:"):
        time.sleep(float(body.split(":")[1]))  # past functionTimeout in the tests


@app.queue_trigger(arg_name="msg", queue_name=LATE_QUEUE, connection=STORAGE)
def on_late_message(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode()
    record("late", body=body, dequeue_count=msg.dequeue_count)
    if body == "fail":
        raise ValueError("asked to fail")


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_WORN_QUEUE%", connection=STORAGE)
def on_worn_message(msg: func.QueueMessage) -> None:
    record("worn", body=msg.get_body().decode(), dequeue_count=msg.dequeue_count)


@app.queue_trigger(arg_name="msg", queue_name=SLOW_QUEUE, connection=STORAGE)
def on_slow_message(msg: func.QueueMessage) -> None:
    body, started = msg.get_body().decode(), time.time()
    record("slow-started", body=body, dequeue_count=msg.dequeue_count)
    time.sleep(float(os.environ.get("SAMPLE_SLOW_SECONDS", "1")))
    record("slow-done", body=body, started=started, finished=time.time(), dequeue_count=msg.dequeue_count)


@app.timer_trigger(schedule="* * * * * *", arg_name="timer", run_on_startup=True)
def tick(timer: func.TimerRequest) -> None:
    record("tick", past_due=timer.past_due)
