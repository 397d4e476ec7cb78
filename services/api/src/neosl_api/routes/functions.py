"""Functions: save, version, invoke; executions and their logs."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from neosl.errors import InvalidInput
from neosl.models import Execution, ExecutionLog, Function, FunctionVersion
from neosl_api import context
from neosl_api.blueprint import Blueprint
from neosl_api.pagination import Page
from neosl_api.schemas.common import PageArgsSchema, page_of
from neosl_api.schemas.functions import (
    MAX_INPUT_BYTES,
    ExecutionDetailSchema,
    ExecutionFilterSchema,
    ExecutionLogSchema,
    ExecutionSchema,
    FunctionCreateSchema,
    FunctionSchema,
    FunctionUpdateSchema,
    FunctionVersionSchema,
    InvokeArgsSchema,
    InvokeSchema,
    QueuedSchema,
)
from neosl_api.services import functions, onchain

blp = Blueprint("functions", __name__, url_prefix="/v1", description="Functions and executions")


@blp.route("/functions", methods=["POST"])
@blp.arguments(FunctionCreateSchema)
@blp.response(201, FunctionSchema)
@blp.alt_response(409, description="A function of this name exists")
@blp.alt_response(422, description="Invalid fields, or the source does not compile")
def create_function(body: dict[str, Any]) -> Function:
    """Save a function (version 1). Its source is compiled first: a syntax error is a 422."""
    spec = functions.FunctionSpec(
        name=body["name"],
        source_code=body["source_code"],
        description=body["description"],
        timeout=body["timeout"],
        memory=body["memory"],
        secrets=tuple(body["secrets"]),
    )
    return functions.create_function(
        context.db(), context.compiler(), context.current_user().id, spec
    )


@blp.route("/functions", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_of(FunctionSchema))
def list_functions(args: dict[str, Any]) -> Page[Function]:
    """Your functions, newest first."""
    return functions.list_functions(
        context.db(), context.current_user().id, args["limit"], args["cursor"]
    )


@blp.route("/functions/<int:function_id>", methods=["GET"])
@blp.response(200, FunctionSchema)
def get_function(function_id: int) -> Function:
    """One of your functions, its current version."""
    return functions.get_function(context.db(), context.current_user().id, function_id)


@blp.route("/functions/<int:function_id>", methods=["PATCH"])
@blp.arguments(FunctionUpdateSchema)
@blp.response(200, FunctionSchema)
@blp.alt_response(409, description="The new name is taken")
def update_function(body: dict[str, Any], function_id: int) -> Function:
    """Change a function. A new source, timeout, memory or grant list makes a new version."""
    return functions.update_function(
        context.db(), context.compiler(), context.current_user().id, function_id, body
    )


@blp.route("/functions/<int:function_id>", methods=["DELETE"])
@blp.response(204)
def delete_function(function_id: int) -> None:
    """Delete a function with its versions, executions and logs."""
    functions.delete_function(context.db(), context.current_user().id, function_id)


@blp.route("/functions/<int:function_id>/versions", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_of(FunctionVersionSchema))
def list_versions(args: dict[str, Any], function_id: int) -> Page[FunctionVersion]:
    """Every version of the function, newest first."""
    return functions.list_versions(
        context.db(), context.current_user().id, function_id, args["limit"], args["cursor"]
    )


@blp.route("/functions/<int:function_id>/versions/<int:version>", methods=["GET"])
@blp.response(200, FunctionVersionSchema)
def get_version(function_id: int, version: int) -> FunctionVersion:
    """One version: its source, limits and grants as they were."""
    return functions.get_version(context.db(), context.current_user().id, function_id, version)


@blp.route("/functions/<int:function_id>/invoke", methods=["POST"])
@blp.arguments(InvokeArgsSchema, location="query")
@blp.arguments(InvokeSchema)
@blp.response(202, QueuedSchema)
@blp.alt_response(200, schema=ExecutionSchema, description="Finished within ?wait")
@blp.alt_response(402, description="Your gas account cannot pay for an execution")
@blp.alt_response(409, description="The function is paused")
def invoke(args: dict[str, Any], body: dict[str, Any], function_id: int) -> Response:
    """Queue an execution; with `?wait=N` (≤ 30 s) answer the finished execution if it ends.

    A tenant's waiting requests are limited (`NSL_WAITING_PER_TENANT`): one beyond them
    answers 202 at once, as a wait that ran out does."""
    input_ = body["input"]
    if len(json.dumps(input_, separators=(",", ":"))) > MAX_INPUT_BYTES:
        message = f"input is larger than {MAX_INPUT_BYTES // 1024} KB"
        raise InvalidInput(message, {"input": [message]})
    user_id = context.current_user().id
    session = context.db()
    execution_id = functions.invoke(
        session, context.settings(), context.dispatcher(), user_id, function_id, input_
    )
    finished = functions.wait_for(
        session,
        context.redis(),
        user_id,
        execution_id,
        args["wait"],
        limit=context.settings().waiting_per_tenant,
    )
    if finished is not None:
        return context.json_response(ExecutionSchema().dump(finished), 200)
    return context.json_response({"execution_id": execution_id, "status": "queued"}, 202)


@blp.route("/executions", methods=["GET"])
@blp.arguments(ExecutionFilterSchema, location="query")
@blp.response(200, page_of(ExecutionSchema))
def list_executions(args: dict[str, Any]) -> Page[Execution]:
    """Your executions, newest first, filtered by function, status and time."""
    f = functions.ExecutionFilter(
        function_id=args["function_id"],
        status=args["status"],
        since=args["since"],
        until=args["until"],
    )
    return functions.list_executions(
        context.db(), context.current_user().id, f, args["limit"], args["cursor"]
    )


@blp.route("/executions/<int:execution_id>", methods=["GET"])
@blp.response(200, ExecutionDetailSchema)
def get_execution(execution_id: int) -> dict[str, Any]:
    """One execution: status, times, result or error, what it cost, its on-chain actions."""
    session, user_id = context.db(), context.current_user().id
    execution = functions.get_execution(session, user_id, execution_id)
    detail = {name: getattr(execution, name) for name in ExecutionSchema().fields}
    detail["actions"] = onchain.actions_of(session, user_id, execution_id)
    return detail


@blp.route("/executions/<int:execution_id>/logs", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_of(ExecutionLogSchema))
def list_logs(args: dict[str, Any], execution_id: int) -> Page[ExecutionLog]:
    """What the execution wrote to its console, newest first."""
    return functions.list_logs(
        context.db(), context.current_user().id, execution_id, args["limit"], args["cursor"]
    )
