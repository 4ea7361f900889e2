"""The OpenAPI 3.1 document of the projections API, its schemas generated from the response models."""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from projections.views import ErrorBody

REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "Bad Request: a malformed parameter",
    401: "Unauthorized: missing or invalid bearer token",
    404: "Not Found",
}


@dataclass(frozen=True, slots=True)
class Param:
    """A path or query parameter."""

    name: str
    where: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True, slots=True)
class Route:
    """One GET endpoint: its answer model and the error statuses it may give."""

    path: str
    summary: str
    model: type[BaseModel] | None
    errors: tuple[int, ...] = (401,)
    params: tuple[Param, ...] = ()
    public: bool = False
    text: str | None = None  # a plain text answer (this format), not a JSON model


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return dict(sorted(schemas.items()))


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _json("OK", _ref(route.model) if route.model else {"type": "object"})}
    if route.text is not None:
        responses["200"] = {
            "description": route.text,
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    for status in route.errors:
        responses[str(status)] = _json(_ERRORS[status], _ref(ErrorBody))
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.summary.lower().replace(" ", "_").replace("'", ""),
        "parameters": [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "description": p.description,
                "schema": p.schema,
            }
            for p in route.params
        ],
        "responses": responses,
    }
    if route.public:
        operation["security"] = []
    return operation


def openapi_document(title: str, routes: list[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the given routes, bearer-token protected unless public."""
    models = sorted({r.model for r in routes if r.model is not None} | {ErrorBody}, key=lambda m: m.__name__)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "security": [{"bearerAuth": []}],
        "paths": {route.path: {"get": _operation(route)} for route in routes},
        "components": {
            "schemas": _schemas(models),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
