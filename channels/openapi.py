"""The OpenAPI 3.1 description of the public JSON API, served at ``GET /api/v1/openapi.json``.

It describes what integrators call (messages, health, grid cells, the booking catalogue and
bookings, Open311 GeoReport v2 in JSON); the webhooks of Twilio and Telegram, the portal and the
console are not part of it. The fuzz tests (``tests/test_fuzz.py``) walk every operation listed
here, so an endpoint added to the document is fuzzed from then on.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from helpline.http import json_response

PATH = "/api/v1/openapi.json"

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what was wrong, in words"}},
}
_OPEN311_ERRORS = {
    "type": "array",
    "items": {"type": "object", "required": ["code", "description"],
              "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}},
}
_LANG = {"type": ["string", "null"], "enum": ["zh", "en", None]}
_SENDER = {"type": "string", "description": "web:<id> (1-64 of A-Z a-z 0-9 . _ ~ -)", "pattern": "^web:[A-Za-z0-9._~-]{1,64}$",
           "examples": ["web:abc123"]}
_ANY_SENDER = {"type": "string", "description": "web:<id>, telegram:<id> or tel:+<E.164>", "examples": ["web:abc123"]}
_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
                "description": "the same key from the same sender is stored once and answered the same way",
                "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,100}$"}}
_LANG_QUERY = {"name": "lang", "in": "query", "required": False, "schema": {"type": "string", "enum": ["zh", "en"]}}


def _errors(*codes: int, schema: dict[str, Any] = _ERROR) -> dict[str, Any]:
    words = {400: "bad input", 401: "unauthorised", 403: "forbidden", 404: "not found", 409: "conflict",
             413: "body too large", 422: "idempotency key reused", 429: "too many messages", 503: "try again"}
    return {str(c): {"description": words.get(c, "error"), "content": {"application/json": {"schema": schema}}}
            for c in codes}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_MESSAGE_IN = {
    "type": "object",
    "required": ["from", "text"],
    "properties": {
        "from": _SENDER,
        "text": {"type": "string", "minLength": 1, "maxLength": 4000},
        "lang": _LANG,
        "location": {"type": ["object", "null"], "required": ["lat", "lon"], "properties": {
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "lon": {"type": "number", "minimum": -180, "maximum": 180}}},
    },
}
_MESSAGE_OUT = {
    "type": "object",
    "required": ["conversation_id", "intent", "lang", "reply"],
    "properties": {
        "conversation_id": {"type": "string"},
        "intent": {"type": "string", "enum": ["knowledge", "booking", "grid_case", "case_status", "operator",
                                              "emergency", "menu", "unknown"]},
        "lang": {"type": "string", "enum": ["zh", "en"]},
        "reply": {"type": "object", "required": ["text", "options"], "properties": {
            "text": {"type": "string"},
            "options": {"type": "array", "items": {"type": "object", "properties": {
                "key": {"type": "string"}, "label": {"type": "string"}}}}}},
        "article": {"type": ["object", "null"]},
        "grid": {"type": ["object", "null"]},
        "case": {"type": ["object", "null"]},
        "booking": {"type": ["object", "null"]},
    },
}
_BOOKING_IN = {
    "type": "object",
    "required": ["from", "service", "slot", "name", "address"],
    "properties": {
        "from": _ANY_SENDER,
        "service": {"type": "string", "maxLength": 32},
        "slot": {"type": "string", "maxLength": 64},
        "name": {"type": "string", "maxLength": 100},
        "address": {"type": "string", "minLength": 4, "maxLength": 300},
        "note": {"type": "string", "maxLength": 1000},
        "phone": {"type": ["string", "null"]},
        "lang": _LANG,
    },
}
_BOOKING_CHANGE = {"type": "object", "properties": {"reason": {"type": "string", "maxLength": 500}}}
_RESCHEDULE = {"type": "object", "required": ["slot"], "properties": {
    "slot": {"type": "string", "maxLength": 64}, "reason": {"type": "string", "maxLength": 500}}}
_BOOKING_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
_OBJECT = {"type": "object"}
_LIST = {"type": "array", "items": {"type": "object"}}


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh dict each call)."""
    open311_req = {
        "type": "object",
        "required": ["api_key", "service_code"],
        "properties": {
            "api_key": {"type": "string"},
            "service_code": {"type": "string", "pattern": "^[CE]\\d{4}$", "examples": ["C0118"]},
            "lat": {"type": "number"}, "long": {"type": "number"},
            "address_string": {"type": "string"}, "address_id": {"type": "string", "pattern": "^\\d{15}$"},
            "description": {"type": "string", "maxLength": 4000},
            "email": {"type": "string"}, "phone": {"type": "string"},
            "first_name": {"type": "string"}, "last_name": {"type": "string"},
            "jurisdiction_id": {"type": "string"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Helpline public API",
            "version": "1",
            "description": "The web/API channel, health, grid cells, bookings and Open311 GeoReport v2 (JSON). "
                           "Every error is JSON; bad input is a 400 naming the problem; no request is answered "
                           "with a 500 page for bad input. Bodies over 8 MB get 413.",
        },
        "paths": {
            "/healthz": {"get": {
                "operationId": "health",
                "responses": {"200": _json({"type": "object", "properties": {"status": {"const": "ok"}}}),
                              **_errors(503)}}},
            "/api/v1/messages": {"post": {
                "operationId": "sendMessage",
                "parameters": [_IDEMPOTENCY],
                "requestBody": _body(_MESSAGE_IN),
                "responses": {"200": _json(_MESSAGE_OUT), **_errors(400, 413, 429, 503)}}},
            "/api/v1/grid/cells": {"get": {
                "operationId": "gridCells",
                "responses": {"200": _json({"type": "object", "required": ["type", "features"], "properties": {
                    "type": {"const": "FeatureCollection"}, "features": _LIST}})}}},
            "/api/v1/services": {"get": {
                "operationId": "listServices", "parameters": [_LANG_QUERY],
                "responses": {"200": _json(_LIST), **_errors(400)}}},
            "/api/v1/services/{code}/slots": {"get": {
                "operationId": "listSlots",
                "parameters": [
                    {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "from", "in": "query", "required": False,
                     "schema": {"type": "string", "description": "a date (2026-12-03) or an ISO date-time"}},
                    {"name": "days", "in": "query", "required": False, "schema": {"type": "integer"}},
                    _LANG_QUERY,
                ],
                "responses": {"200": _json(_LIST), **_errors(400, 404)}}},
            "/api/v1/bookings": {"post": {
                "operationId": "createBooking", "parameters": [_IDEMPOTENCY],
                "requestBody": _body(_BOOKING_IN),
                "responses": {"201": _json(_OBJECT, "created"), **_errors(400, 404, 409, 413, 422)}}},
            "/api/v1/bookings/{id}": {"get": {
                "operationId": "getBooking", "parameters": [_BOOKING_ID, _LANG_QUERY],
                "responses": {"200": _json(_OBJECT), **_errors(400, 404)}}},
            "/api/v1/bookings/{id}/cancel": {"post": {
                "operationId": "cancelBooking", "parameters": [_BOOKING_ID],
                "requestBody": _body(_BOOKING_CHANGE, required=False),
                "responses": {"200": _json(_OBJECT), **_errors(400, 404, 409)}}},
            "/api/v1/bookings/{id}/reschedule": {"post": {
                "operationId": "rescheduleBooking", "parameters": [_BOOKING_ID],
                "requestBody": _body(_RESCHEDULE),
                "responses": {"200": _json(_OBJECT), **_errors(400, 404, 409)}}},
            "/open311/v2/services.json": {"get": {
                "operationId": "open311Services",
                "parameters": [{"name": "jurisdiction_id", "in": "query", "required": False, "schema": {"type": "string"}}],
                "responses": {"200": _json(_LIST), **_errors(400, 404, schema=_OPEN311_ERRORS)}}},
            "/open311/v2/services/{code}.json": {"get": {
                "operationId": "open311Service",
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json(_OBJECT), **_errors(400, 404, schema=_OPEN311_ERRORS)}}},
            "/open311/v2/requests.json": {
                "get": {
                    "operationId": "open311Requests",
                    "parameters": [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                                   for n in ("service_request_id", "service_code", "start_date", "end_date", "status")],
                    "responses": {"200": _json(_LIST), **_errors(400, 404, schema=_OPEN311_ERRORS)}},
                "post": {
                    "operationId": "open311CreateRequest",
                    "requestBody": {"required": True, "content": {
                        "application/x-www-form-urlencoded": {"schema": open311_req}}},
                    "responses": {"201": _json(_LIST, "created"),
                                  **_errors(400, 403, 404, 413, schema=_OPEN311_ERRORS)}},
            },
            "/open311/v2/requests/{id}.json": {"get": {
                "operationId": "open311Request",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json(_LIST), **_errors(400, 404, schema=_OPEN311_ERRORS)}}},
        },
    }


async def openapi(request: web.Request) -> web.Response:
    return json_response(document())


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, openapi)
