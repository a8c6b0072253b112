"""The OpenAPI 3.1 description of the collector API, served at /openapi.json.

Written by hand from docs/PROTOCOL.md; the event schema itself is generated from
`guard.model.Event`, so the description and the validation cannot drift apart.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from guard import __version__
from guard.collector.store import CODE_STATUSES
from guard.delivery.approval_code import CHANNELS as CODE_CHANNELS
from guard.model import Channel, Event

REF = "#/components/schemas/{model}"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


def _header(name: str, description: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "description": description,
            "schema": schema}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


def _html_list(operation_id: str, summary: str, what: str,
               filters: tuple[str, ...]) -> dict[str, Any]:
    """A signed-in HTML list page filtered by optional string query parameters."""
    html = {"text/html": {"schema": {"type": "string"}}}
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [{"name": n, "in": "query", "required": False,
                        "schema": {"type": "string"}} for n in filters],
        "responses": {
            "200": {"description": what, "content": html},
            "400": {"description": "a filter is not valid: the page says which", "content": html},
            "401": {"description": "sign-in page", "content": html},
            "503": _error("database unavailable"),
        },
    }


def _schemas() -> dict[str, Any]:
    event = Event.model_json_schema(by_alias=True, ref_template=REF, mode="validation")
    defs = event.pop("$defs", {})
    schemas: dict[str, Any] = dict(defs)
    schemas["Event"] = event
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "a clear reason"}},
    }
    schemas["EnrollRequest"] = {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "maxLength": 512,
                      "description": "enrolment token set by IT"},
            "hostname": {"type": "string", "maxLength": 255},
            "branch": {"type": "string", "maxLength": 128},
            "device_id": {"type": "string", "pattern": r"^[A-Za-z0-9._:@-]{1,128}$",
                          "description": "the id the agent already uses (optional)"},
        },
    }
    schemas["EnrollResponse"] = {
        "type": "object",
        "required": ["device_id", "key"],
        "properties": {
            "device_id": {"type": "string"},
            "key": {"type": "string", "description": "base64 of 32 random bytes"},
        },
    }
    schemas["Batch"] = {
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {"events": {"type": "array", "items": {"$ref": REF.format(model="Event")}}},
    }
    schemas["Ack"] = {
        "type": "object",
        "required": ["acked", "duplicates"],
        "properties": {
            "acked": {"type": "array", "items": {"type": "string", "format": "uuid"},
                      "description": "every id of the batch"},
            "duplicates": {"type": "array", "items": {"type": "string", "format": "uuid"},
                           "description": "ids that were stored before this batch"},
        },
    }
    schemas["EventPage"] = {
        "type": "object",
        "required": ["events", "next_offset"],
        "properties": {
            "events": {"type": "array", "items": {"$ref": REF.format(model="Event")}},
            "next_offset": {"type": ["integer", "null"]},
        },
    }
    schemas["ApprovalCodeRequest"] = {
        "type": "object",
        "required": ["device_id", "channel"],
        "additionalProperties": False,
        "properties": {
            "device_id": {"type": "string", "pattern": r"^[A-Za-z0-9._:@-]{1,128}$"},
            "channel": {"type": "string", "enum": ["clipboard", "file", "print", "screen",
                                                   "unlock", "usb"]},
            "minutes": {"type": "integer", "minimum": 1, "maximum": 480},
            "issuer": {"type": "string", "maxLength": 128,
                       "description": "who issues it (IT's name or login); recorded"},
            "reason": {"type": "string", "maxLength": 512,
                       "description": "why (no customer data); recorded"},
        },
    }
    schemas["ApprovalCode"] = {
        "type": "object",
        "required": ["code", "grouped", "device_id", "channel", "valid_minutes", "id",
                     "recorded", "valid_until", "issuer"],
        "properties": {
            "code": {"type": "string", "pattern": r"^\d{12}$"},
            "grouped": {"type": "string"},
            "device_id": {"type": "string"},
            "channel": {"type": "string"},
            "valid_minutes": {"type": "integer"},
            "id": {"type": "integer", "description": "the code's number in the codes list"},
            "recorded": {"type": "boolean", "const": True,
                         "description": "the collector recorded the code (its id, never the "
                                        "code) before answering"},
            "valid_until": {"type": "string", "format": "date-time"},
            "issuer": {"type": "string"},
        },
    }
    time_or_null = {"type": ["string", "null"], "format": "date-time"}
    schemas["IssuedCode"] = {
        "type": "object",
        "required": ["id", "device_id", "hostname", "branch", "channel", "status", "issued",
                     "valid_from", "valid_until", "issuer", "reason", "uses", "spent",
                     "spent_event", "last_use"],
        "properties": {
            "id": {"type": "integer"},
            "device_id": {"type": "string"},
            "hostname": {"type": "string"},
            "branch": {"type": "string"},
            "channel": {"type": "string", "enum": sorted(CODE_CHANNELS)},
            "status": {"type": "string", "enum": list(CODE_STATUSES),
                       "description": "valid (unused, in its window), spent (used once), reused "
                                      "(reported used more than once), expired (never used), "
                                      "unrecorded (used, never issued here)"},
            "issued": time_or_null,
            "valid_from": {"type": "string", "format": "date-time"},
            "valid_until": {"type": "string", "format": "date-time"},
            "issuer": {"type": "string"},
            "reason": {"type": "string"},
            "uses": {"type": "integer", "minimum": 0},
            "spent": time_or_null,
            "spent_event": {"type": ["string", "null"]},
            "last_use": time_or_null,
        },
    }
    schemas["CodeList"] = {
        "type": "object",
        "required": ["codes", "next_offset"],
        "properties": {
            "codes": {"type": "array", "items": {"$ref": REF.format(model="IssuedCode")}},
            "next_offset": {"type": ["integer", "null"]},
        },
    }
    schemas["DeviceList"] = {
        "type": "object",
        "required": ["devices"],
        "properties": {"devices": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "hostname", "branch", "enrolled", "last_seen", "last_heartbeat"],
            "properties": {
                "id": {"type": "string"},
                "hostname": {"type": "string"},
                "branch": {"type": "string"},
                "enrolled": {"type": "string", "format": "date-time"},
                "last_seen": {"type": ["string", "null"], "format": "date-time"},
                "last_heartbeat": {"type": ["string", "null"], "format": "date-time",
                                   "description": "when the collector received the last one"},
                "last_heartbeat_device": {"type": ["string", "null"], "format": "date-time",
                                          "description": "the time the device gave it"},
            },
        }}},
    }
    schemas["Health"] = {
        "type": "object",
        "required": ["status", "version"],
        "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
    }
    return schemas


def _query_params() -> list[dict[str, Any]]:
    text = {"type": "string", "maxLength": 256}
    return [
        _query("since", "events at or after this time (RFC 3339)",
               {"type": "string", "format": "date-time"}),
        _query("until", "events before this time (RFC 3339)",
               {"type": "string", "format": "date-time"}),
        _query("branch", "branch code", text),
        _query("device", "device id", text),
        _query("teller", "teller login", text),
        _query("channel", "channel", {"type": "string", "enum": [str(c) for c in Channel]}),
        _query("type", "event type", text),
        _query("finding_type", "events with a finding of this type", text),
        _query("outcome", "outcome", text),
        _query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 1000}),
        _query("offset", "rows to skip", {"type": "integer", "minimum": 0,
                                          "maximum": 1_000_000_000}),
        _query("order", "by event time", {"type": "string", "enum": ["asc", "desc"]}),
    ]


@cache
def spec() -> dict[str, Any]:
    """The whole document (built once per process)."""
    auth_err = _error("missing or wrong admin token")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Teller Guard collector",
            "version": __version__,
            "description": "Enrolment, signed event batches, policy, query and dashboard of the "
                           "Teller Guard (柜面隐私卫士) collector. See docs/PROTOCOL.md.",
        },
        "paths": {
            "/api/v1/health": {"get": {
                "operationId": "health",
                "summary": "liveness",
                "responses": {"200": _json("Health", "serving")},
            }},
            "/api/v1/enroll": {"post": {
                "operationId": "enroll",
                "summary": "a device gets its id and key with the enrolment token",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": REF.format(model="EnrollRequest")}}}},
                "responses": {
                    "200": _json("EnrollResponse", "enrolled (with the admin token, a new key "
                                                   "replaces the old one of an enrolled id)"),
                    "400": _error("malformed JSON"),
                    "401": _error("wrong admin token given for a re-enrolment"),
                    "403": _error("wrong enrolment token"),
                    "409": _error("the id is enrolled already; re-enrolment needs the admin"),
                    "413": _error("body over the limit"),
                    "422": _error("invalid field"),
                    "429": _error("too many wrong tokens from this address; retry later"),
                    "503": _error("database unavailable"),
                },
            }},
            "/api/v1/events": {
                "post": {
                    "operationId": "postEvents",
                    "summary": "a signed batch of events",
                    "parameters": [
                        _header("X-TG-Device", "the enrolled device id",
                                {"type": "string"}, True),
                        _header("X-TG-Timestamp", "Unix seconds when the batch was signed",
                                {"type": "string", "pattern": r"^\d{1,12}$"}, True),
                        _header("X-TG-Signature",
                                'hex HMAC-SHA256 with the device key over timestamp + "." + body',
                                {"type": "string", "pattern": "^[0-9a-f]{64}$"}, True),
                        _header("Content-Encoding", "gzip when the body is compressed",
                                {"type": "string", "enum": ["gzip", "identity"]}, False),
                        _header("X-TG-Chain", "journal chain head seq:hash (signed: the "
                                'signature is then over timestamp + "." + chain + "." + body)',
                                {"type": "string", "pattern": "^[0-9]{1,18}:[0-9a-f]{16,128}$"},
                                False),
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": REF.format(model="Batch")}}}},
                    "responses": {
                        "200": _json("Ack", "accepted; every id acknowledged, each stored once"),
                        "400": _error("malformed JSON or bad gzip"),
                        "401": _error("unknown device, bad signature or stale timestamp"),
                        "403": _error("an event of another device"),
                        "409": _error("replay of a batch already received"),
                        "413": _error("body over the limit"),
                        "422": _error("schema validation failed, a time out of range, or an "
                                      "unmasked customer identifier"),
                        "503": _error("database unavailable"),
                    },
                },
                "get": {
                    "operationId": "queryEvents",
                    "summary": "stored events, filtered (admin)",
                    "security": [{"adminToken": []}],
                    "parameters": _query_params(),
                    "responses": {
                        "200": _json("EventPage", "events in the order asked"),
                        "400": _error("bad filter"),
                        "401": auth_err,
                        "503": _error("database unavailable"),
                    },
                },
            },
            "/api/v1/devices": {"get": {
                "operationId": "listDevices",
                "summary": "enrolled devices and when they were last heard from (admin)",
                "security": [{"adminToken": []}],
                "responses": {"200": _json("DeviceList", "devices"), "401": auth_err,
                              "503": _error("database unavailable")},
            }},
            "/api/v1/approval-codes": {"get": {
                "operationId": "listApprovalCodes",
                "summary": "the one-time codes issued, newest first, with their use (admin)",
                "security": [{"adminToken": []}],
                "parameters": [
                    _query("status", "codes in this state now",
                           {"type": "string", "enum": list(CODE_STATUSES)}),
                    _query("device", "device id",
                           {"type": "string", "pattern": r"^[A-Za-z0-9._:@-]{1,128}$"}),
                    _query("channel", "what the code approves",
                           {"type": "string", "enum": sorted(CODE_CHANNELS)}),
                    _query("limit", "page size", {"type": "integer", "minimum": 1,
                                                  "maximum": 1000}),
                    _query("offset", "rows to skip", {"type": "integer", "minimum": 0,
                                                      "maximum": 1_000_000_000}),
                ],
                "responses": {
                    "200": _json("CodeList", "issued codes (their ids, never the codes)"),
                    "400": _error("bad filter"),
                    "401": auth_err,
                    "503": _error("database unavailable"),
                },
            }, "post": {
                "operationId": "issueApprovalCode",
                "summary": "a one-time approval code for one device and channel (admin)",
                "security": [{"adminToken": []}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": REF.format(model="ApprovalCodeRequest")}}}},
                "responses": {
                    "200": _json("ApprovalCode", "the code, valid from now"),
                    "400": _error("malformed JSON"),
                    "401": auth_err,
                    "404": _error("unknown device"),
                    "409": _error("the device's key cannot be read, or 100 codes of this "
                                  "device and channel were issued in these five minutes"),
                    "413": _error("body over the limit"),
                    "422": _error("bad request"),
                    "503": _error("database unavailable"),
                },
            }},
            "/api/v1/policy": {"get": {
                "operationId": "getPolicy",
                "summary": "the current policy document (a signed GET of an enrolled device)",
                "parameters": [
                    _header("X-TG-Device", "the enrolled device id", {"type": "string"}, True),
                    _header("X-TG-Timestamp", "Unix seconds when the request was signed",
                            {"type": "string", "pattern": r"^\d{1,12}$"}, True),
                    _header("X-TG-Signature",
                            'hex HMAC-SHA256 with the device key over timestamp + "." + path',
                            {"type": "string", "pattern": "^[0-9a-f]{64}$"}, True),
                    _header("If-None-Match", "the ETag the agent holds", {"type": "string"},
                            False),
                ],
                "responses": {
                    "200": {
                        "description": "policy TOML",
                        "headers": {"ETag": {"schema": {"type": "string"}}},
                        "content": {"application/toml": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "unchanged since the ETag given"},
                    "401": _error("unknown device, bad signature or stale timestamp"),
                    "503": _error("database unavailable"),
                },
            }},
            "/": {"get": {
                "operationId": "dashboard",
                "summary": "the compliance dashboard (HTML; session cookie or bearer token)",
                "responses": {
                    "200": {"description": "dashboard",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                    "401": {"description": "sign-in page",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                    "503": _error("database unavailable"),
                },
            }},
            "/events": {"get": _html_list(
                "eventsPage", "the events page for compliance staff (HTML, newest first; "
                "session cookie or bearer token)", "one page of events",
                ("since", "until", "branch", "device", "teller", "channel", "type", "outcome",
                 "page"))},
            "/codes": {"get": _html_list(
                "codesPage", "the one-time codes issued, for IT and compliance (HTML, newest "
                "first; session cookie or bearer token)", "one page of codes",
                ("status", "device", "channel", "page"))},
            "/events.csv": {"get": {
                "operationId": "eventsExport",
                "summary": "the events of the page's filters as CSV (masked, up to 10,000)",
                "parameters": [
                    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                    for n in ("since", "until", "branch", "device", "teller", "channel", "type",
                              "outcome")],
                "responses": {
                    "200": {"description": "CSV with a header line",
                            "content": {"text/csv": {"schema": {"type": "string"}}}},
                    "400": _error("a filter is not valid"),
                    "401": _error("not signed in"),
                    "503": _error("database unavailable"),
                },
            }},
            "/events/{seq}": {"get": {
                "operationId": "eventDetail",
                "summary": "one event's detail page (HTML, masked)",
                "parameters": [{"name": "seq", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "the event",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                    "401": {"description": "sign-in page",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                    "404": _error("no such event"),
                    "503": _error("database unavailable"),
                },
            }},
            "/login": {"post": {
                "operationId": "login",
                "summary": "dashboard sign-in with the admin token in a form (never in a URL)",
                "requestBody": {"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": {
                        "type": "object", "properties": {"token": {"type": "string"}},
                        "required": ["token"]}}}},
                "responses": {
                    "303": {"description": "signed in: session cookie set, redirect to /"},
                    "400": _error("unreadable form"),
                    "401": {"description": "wrong token: the sign-in page again",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                    "403": _error("sign-in posted from another site"),
                    "413": _error("form too large"),
                    "415": _error("not a form"),
                },
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi",
                "summary": "this document",
                "responses": {"200": {"description": "OpenAPI 3.1",
                                      "content": {"application/json": {}}}},
            }},
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }
