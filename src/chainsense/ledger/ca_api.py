"""HTTP face of the certificate authority (FastAPI); thin over :class:`CertificateAuthority`.

Endpoints::

    GET  /ca                  {"address", "chain_id", "contract"}
    POST /mts                 {"address", "metadata"?}            -> 201 MT info (admin token)
    GET  /mts/{address}       MT info or 404
    POST /countersign         {"record": {...}, "signature": hex} -> {"digest", "ca_signature"}
    POST /countersign/many    {"items": [{"record", "signature"}]}
                              -> {"countersigned": [{"digest", "ca_signature"}], "refused": null
                                  | {"error", "field", "detail"}} (in order, up to a refusal)
    POST /countersign/batch   {"items": [{"record", "signature"}], "submitter"}
                              -> {"root", "size", "submitter", "ca_signature"}

Bodies are parsed by hand rather than by pydantic models so that every refusal is one JSON
object ``{"error": code, "field": name, "detail": message}`` with a 4xx status that names the
bad input (malformed JSON, bad hex, wrong length, unknown MT, revoked MT, bad signature,
stale nonce).
A body is read up to :data:`MAX_BODY` bytes and parsed by :func:`chainsense.jsonlimits.loads`
(at most :data:`~chainsense.jsonlimits.MAX_DEPTH` levels deep) before anything looks at it.
Answers are ASCII JSON, so that a field name an attacker chose cannot break their encoding.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from chainsense import jsonlimits
from chainsense.errors import ChainsenseError
from chainsense.ledger.ca import MAX_BATCH, CertificateAuthority, MTInfo
from chainsense.ledger.ca_metadata import MAX_METADATA_BYTES, MAX_METADATA_DEPTH, CAError
from chainsense.ledger.records import RECORD_FIELDS, RECORD_LIMITS, Record

MAX_BODY = 32 * 1024 * 1024
_STATUS = {
    "bad_input": 400,
    "bad_json": 400,
    "bad_signature": 401,
    "unauthorized": 401,
    "mt_revoked": 403,
    "unknown_mt": 404,
    "not_found": 404,
    "stale_nonce": 409,
    "duplicate": 409,
    "too_large": 413,
}


class ASCIIJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: a lone surrogate in a refused field name
    must not turn a 400 into a 500 while the answer is encoded."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


# OpenAPI descriptions of the bodies parsed by hand below (documentation, and what the
# schemathesis fuzzer of tests/test_ledger_ca_fuzz.py generates from).
_ADDRESS = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}
_SIGNATURE = {"type": "string", "pattern": "^0x[0-9a-fA-F]{130}$"}
_RECORD = {
    "type": "object",
    "additionalProperties": False,
    "required": list(RECORD_FIELDS),
    "properties": {"mt": _ADDRESS}
    | {
        name: {"type": "integer", "minimum": 0, "maximum": top}
        for name, top in RECORD_LIMITS.items()
    },
}
_SIGNED = {
    "type": "object",
    "additionalProperties": False,
    "required": ["record", "signature"],
    "properties": {"record": _RECORD, "signature": _SIGNATURE},
}
_REGISTER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["address"],
    "properties": {
        "address": _ADDRESS,
        "metadata": {
            "type": "object",
            "description": f"any JSON object: at most {MAX_METADATA_BYTES} bytes as compact "
            f"JSON, {MAX_METADATA_DEPTH} levels, finite numbers, valid Unicode",
        },
    },
}
_MANY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["items"],
    "properties": {
        "items": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": _SIGNED},
    },
}
_BATCH = {
    "type": "object",
    "additionalProperties": False,
    "required": ["items", "submitter"],
    "properties": {
        "items": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": _SIGNED},
        "submitter": _ADDRESS,
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _error(code: str, field: str, detail: str) -> JSONResponse:
    return ASCIIJSONResponse(
        {"error": code, "field": field, "detail": detail}, status_code=_STATUS.get(code, 400)
    )


def parse_hex(value: Any, field: str, length: int) -> bytes:
    """0x-prefixed hex of exactly ``length`` bytes, else :class:`CAError` naming ``field``."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise CAError("bad_input", field, "must be a 0x-prefixed hex string")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise CAError("bad_input", field, "not valid hex") from exc
    if len(raw) != length:
        raise CAError("bad_input", field, f"must be {length} bytes, got {len(raw)}")
    return raw


def parse_record(value: Any, field: str) -> Record:
    try:
        return Record.from_dict(value)
    except ChainsenseError as exc:
        raise CAError(
            "bad_input",
            field + str(exc).split(":", 1)[0].removeprefix("record"),
            str(exc).split(": ", 1)[-1],
        ) from exc


async def _json(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "0")
    if (
        not (declared.isascii() and declared.isdigit() and len(declared) <= 20)
        or int(declared) > MAX_BODY
    ):
        raise CAError("too_large", "body", f"larger than {MAX_BODY} bytes (or bad length)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # a chunked body has no content-length to trust
        size += len(chunk)
        if size > MAX_BODY:
            raise CAError("too_large", "body", f"larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    try:
        data = await run_in_threadpool(
            jsonlimits.loads, b"".join(chunks), "body", max_bytes=MAX_BODY
        )
    except jsonlimits.JSONLimitError as exc:
        raise CAError(exc.code, "body", exc.detail) from exc
    if not isinstance(data, dict):
        raise CAError("bad_json", "body", "must be a JSON object")
    return data


def _signed_items(data: dict[str, Any]) -> list[tuple[Record, bytes]]:
    """The ``items`` list of a many/batch body: records with their MT signatures."""
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise CAError("bad_input", "items", "must be a non-empty list")
    if len(items) > MAX_BATCH:
        raise CAError("bad_input", "items", f"more than {MAX_BATCH} records")
    parsed = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise CAError("bad_input", f"items[{i}]", "must be an object")
        parsed.append(
            (
                parse_record(item.get("record"), f"items[{i}].record"),
                parse_hex(item.get("signature"), f"items[{i}].signature", 65),
            )
        )
    return parsed


def _mt_json(info: MTInfo) -> dict[str, Any]:
    return {"address": info.address, "metadata": info.metadata, "last_nonce": info.last_nonce}


def build_app(ca: CertificateAuthority, admin_token: str | None = None) -> FastAPI:
    app = FastAPI(
        title="chainsense certificate authority",
        version="1",
        default_response_class=ASCIIJSONResponse,
    )

    @app.exception_handler(CAError)
    async def _ca_error(_request: Request, exc: CAError) -> JSONResponse:
        return _error(exc.code, exc.field, str(exc).split(": ", 1)[-1])

    @app.exception_handler(ChainsenseError)
    async def _other_error(_request: Request, exc: ChainsenseError) -> JSONResponse:
        field, _, detail = str(exc).partition(": ")
        return _error("bad_input", field, detail or str(exc))

    @app.get("/ca")
    async def info() -> dict[str, Any]:
        return {
            "address": ca.address,
            "chain_id": ca.domain.chain_id,
            "contract": ca.domain.contract,
        }

    @app.post("/mts", status_code=201, openapi_extra=_body(_REGISTER))
    async def register(request: Request) -> dict[str, Any]:
        if admin_token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {admin_token}".encode()):
                raise CAError("unauthorized", "authorization", "missing or wrong admin token")
        data = await _json(request)
        unknown = sorted(set(data) - {"address", "metadata"})
        if unknown:
            raise CAError("bad_input", unknown[0], "unknown field")
        if "address" not in data:
            raise CAError("bad_input", "address", "missing")
        result = await run_in_threadpool(ca.register, data["address"], data.get("metadata"))
        return _mt_json(result)

    @app.get("/mts/{address}")
    async def get_mt(address: str) -> dict[str, Any]:
        result = await run_in_threadpool(ca.get, address)
        if result is None:
            raise CAError("unknown_mt", "address", f"{address} is not registered")
        return _mt_json(result)

    @app.post("/countersign", openapi_extra=_body(_SIGNED))
    async def countersign(request: Request) -> dict[str, Any]:
        data = await _json(request)
        for name in ("record", "signature"):
            if name not in data:
                raise CAError("bad_input", name, "missing")
        record = parse_record(data["record"], "record")
        signature = parse_hex(data["signature"], "signature", 65)
        result = await run_in_threadpool(ca.countersign, record, signature)
        return {
            "digest": "0x" + result.digest.hex(),
            "ca_signature": "0x" + result.ca_signature.hex(),
        }

    @app.post("/countersign/many", openapi_extra=_body(_MANY))
    async def countersign_many(request: Request) -> dict[str, Any]:
        data = await _json(request)
        unknown = sorted(set(data) - {"items"})
        if unknown:
            raise CAError("bad_input", unknown[0], "unknown field")
        done, refusal = await run_in_threadpool(ca.countersign_many, _signed_items(data))
        return {
            "countersigned": [
                {"digest": "0x" + c.digest.hex(), "ca_signature": "0x" + c.ca_signature.hex()}
                for c in done
            ],
            "refused": None
            if refusal is None
            else {
                "error": refusal.code,
                "field": refusal.field,
                "detail": str(refusal).split(": ", 1)[-1],
            },
        }

    @app.post("/countersign/batch", openapi_extra=_body(_BATCH))
    async def countersign_batch(request: Request) -> dict[str, Any]:
        data = await _json(request)
        parsed = _signed_items(data)
        if "submitter" not in data:
            raise CAError("bad_input", "submitter", "missing")
        cert = await run_in_threadpool(ca.countersign_batch, parsed, data["submitter"])
        return {
            "root": "0x" + cert.root.hex(),
            "size": cert.size,
            "submitter": cert.submitter,
            "ca_signature": "0x" + cert.ca_signature.hex(),
        }

    return app
