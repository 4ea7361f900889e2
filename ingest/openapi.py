"""The OpenAPI 3.1 document of the ingester's routes: what Brevo posts, and every answer it may get.

Served at `GET /webhooks/brevo/openapi.json`; the route fuzz (`tests/functional/test_fuzz_routes.py`)
generates requests from it and holds the ingester to the statuses it lists.
"""

from typing import Any

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error", "message"],
}
_TEXT = {"type": "string"}
_ERROR_CONTENT = {"application/json": {"schema": _ERROR}}
_WHOLE = {"type": "integer"}
_BREVO_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "one Brevo event, in the seed guide's dialect or real Brevo's; other keys are kept",
    "properties": {
        "event": _TEXT,
        "email": _TEXT,
        "id": _WHOLE,
        "date": _TEXT,
        "ts": _WHOLE,
        "ts_event": _WHOLE,
        "ts_epoch": _WHOLE,
        "message-id": _TEXT,
        "subject": _TEXT,
        "tag": _TEXT,
        "tags": {"type": "array", "items": _TEXT},
        "camp_id": {"type": ["integer", "string"]},
        "campaign name": _TEXT,
        "link": _TEXT,
        "URL": _TEXT,
        "reason": _TEXT,
        "phone": _TEXT,
        "to": _TEXT,
        "msg_status": _TEXT,
        "text": _TEXT,
        "list_id": {"type": ["integer", "array"], "items": _WHOLE},
    },
    "additionalProperties": True,
}
_BODY = {
    "anyOf": [
        {"$ref": "#/components/schemas/BrevoEvent"},
        {
            "type": "array",
            "description": "a batch, as Brevo sends them",
            "items": {"$ref": "#/components/schemas/BrevoEvent"},
            "minItems": 1,
            "maxItems": 500,
        },
        {
            "type": "object",
            "description": "inbound parsing",
            "properties": {"items": {"type": "array", "items": {"type": "object"}}},
            "required": ["items"],
        },
    ]
}
_ACCEPTED = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "accepted": _WHOLE,
        "event_ids": {"type": "array", "items": _TEXT},
    },
    "required": ["success", "accepted", "event_ids"],
}
_WHY = {
    400: "Bad Request: malformed JSON, or an event that cannot become a canonical event",
    401: "Unauthorized: a missing or invalid signature or token",
    403: "Forbidden: the caller's address is not allowed",
    408: "Request Timeout: the body came too slowly",
    413: "Payload Too Large",
    415: "Unsupported Media Type: not application/json",
    429: "Too Many Requests: a refused caller (401, 403) over its limit, never an authenticated one",
    503: "Service Unavailable: the log cannot take the append now, the ingester is saturated "
    "(TAJO_MAX_IN_FLIGHT), or the append passed the deadline; retry later (Brevo does)",
}
_SECONDS = {"schema": {"type": "integer", "minimum": 0}}
_RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"description": "refused requests allowed per period", **_SECONDS},
    "RateLimit-Remaining": {"description": "refused requests left before 429", **_SECONDS},
    "RateLimit-Reset": {"description": "seconds until the allowance is whole again", **_SECONDS},
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", **_SECONDS}}
_HEADERS: dict[int, dict[str, Any]] = {
    401: _RATE_LIMIT_HEADERS,
    403: _RATE_LIMIT_HEADERS,
    429: _RATE_LIMIT_HEADERS | _RETRY_AFTER,
    503: _RETRY_AFTER,
}


def _answers(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    content = {"application/json": {"schema": ok}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    for status in errors:
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        responses[str(status)] = {"description": _WHY[status], "content": error}
        if status in _HEADERS:
            responses[str(status)]["headers"] = _HEADERS[status]
    return responses


def _body(required: bool) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _BODY}}}


def ingest_openapi_document() -> dict[str, Any]:
    """The document: the webhook, its dry run and its health, behind the configured credentials.

    Besides these schemes, a custom header (BREVO_WEBHOOK_HEADER) may be configured; its name is the
    operator's, so it is not listed.
    """
    return {
        "openapi": "3.1.0",
        "info": {"title": "tajo-events ingester", "version": "1.0.0"},
        "security": [{"signature": []}, {"bearerAuth": []}, {"basicAuth": []}],
        "paths": {
            "/webhooks/brevo": {
                "post": {
                    "summary": "Append Brevo events to the log",
                    "operationId": "receive_webhook",
                    "requestBody": _body(required=True),
                    "responses": _answers(_ACCEPTED, 400, 401, 403, 408, 413, 415, 429, 503),
                }
            },
            "/webhooks/brevo/test": {
                "post": {
                    "summary": "Check authentication and what a body would become, without the log",
                    "operationId": "test_webhook",
                    "requestBody": _body(required=False),
                    "responses": _answers({"type": "object"}, 400, 401, 403, 408, 413, 415, 429),
                }
            },
            "/webhooks/brevo/health": {
                "get": {
                    "summary": "Whether the log takes appends",
                    "operationId": "health",
                    "responses": _answers({"type": "object"}, 401, 429, 503),
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": {
                            "description": _WHY[401],
                            "content": {"application/json": {"schema": _ERROR}},
                            "headers": _RATE_LIMIT_HEADERS,
                        },
                        "429": {
                            "description": _WHY[429],
                            "content": {"application/json": {"schema": _ERROR}},
                            "headers": _RATE_LIMIT_HEADERS | _RETRY_AFTER,
                        },
                    },
                }
            },
            "/webhooks/brevo/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "security": [],
                    "responses": _answers({"type": "object"}),
                }
            },
        },
        "components": {
            "schemas": {"BrevoEvent": _BREVO_EVENT, "Error": _ERROR},
            "securitySchemes": {
                "signature": {"type": "apiKey", "in": "header", "name": "X-Brevo-Signature"},
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "basicAuth": {"type": "http", "scheme": "basic"},
            },
        },
    }
