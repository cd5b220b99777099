"""HTTP client of the CA service, with the same countersign interface as the core."""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import httpx

from chainsense import jsonlimits
from chainsense.errors import ChainsenseError
from chainsense.ledger.ca import BatchCertificate, CAError, Countersignature
from chainsense.ledger.merkle import MerkleTree
from chainsense.ledger.records import Domain, Record

MAX_ANSWER = 1024 * 1024
"""Largest CA answer read (the largest real one, an MT with its metadata, is under 5 KB)."""


class CAUnavailableError(ChainsenseError):
    """The CA service could not be reached (retry later; nothing was decided)."""


class CAClient:
    """Talks to ``chainsense ca serve`` at ``base_url`` (e.g. http://127.0.0.1:8600)."""

    def __init__(
        self, base_url: str, *, timeout: float = 10.0, admin_token: str | None = None
    ) -> None:
        self.url = base_url
        headers = {"authorization": f"Bearer {admin_token}"} if admin_token else {}
        self._http = httpx.Client(base_url=base_url, timeout=timeout, headers=headers)
        self._domain: Domain | None = None

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            resp = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise CAUnavailableError(f"ca: cannot reach {self._http.base_url}: {exc}") from exc
        try:  # bounded like every untrusted JSON: the answer may not come from the CA
            data = jsonlimits.loads(resp.content, "ca", max_bytes=MAX_ANSWER)
        except ValueError as exc:  # not the CA (a proxy's error page) or a crashed handler
            raise CAUnavailableError(
                f"ca: {self._http.base_url} answered HTTP {resp.status_code} without JSON"
            ) from exc
        if not isinstance(data, dict):
            raise CAUnavailableError(
                f"ca: {self._http.base_url} answered HTTP {resp.status_code} with other JSON"
            )
        if resp.status_code >= 400:
            raise CAError(
                data.get("error", "error"), data.get("field", "?"), data.get("detail", "")
            )
        return data

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/ca")

    def register(self, address: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._request("POST", "/mts", {"address": address, "metadata": metadata or {}})

    def get(self, address: str) -> dict[str, Any] | None:
        try:
            return self._request("GET", f"/mts/{address}")
        except CAError as exc:
            if exc.code == "unknown_mt":
                return None
            raise

    def last_nonce(self, address: str) -> int | None:
        """The last nonce the CA countersigned for the MT (-1: none yet), None when unknown."""
        info = self.get(address)
        if info is None:
            return None
        value = info.get("last_nonce")
        if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value < 2**64:
            raise ChainsenseError(
                f"ca: {self._http.base_url} answered last_nonce {reprlib.repr(value)}, "
                "not -1..2**64-1"
            )
        return value

    def countersign(self, record: Record, mt_signature: bytes) -> Countersignature:
        data = self._request(
            "POST",
            "/countersign",
            {"record": record.to_dict(), "signature": "0x" + bytes(mt_signature).hex()},
        )
        return Countersignature(
            record, bytes.fromhex(data["digest"][2:]), bytes.fromhex(data["ca_signature"][2:])
        )

    def countersign_many(
        self, items: Sequence[tuple[Record, bytes]]
    ) -> tuple[list[Countersignature], CAError | None]:
        """Countersign ``items`` in one request: the answers in order up to the CA's first
        refusal, and that refusal (see ``CertificateAuthority.countersign_many``)."""
        body = {"items": [{"record": r.to_dict(), "signature": "0x" + s.hex()} for r, s in items]}
        data = self._request("POST", "/countersign/many", body)
        answers, refused = data.get("countersigned"), data.get("refused")
        if not isinstance(answers, list) or len(answers) > len(items):
            raise CAUnavailableError(f"ca: {self._http.base_url} answered a malformed list")
        try:
            done = [
                Countersignature(r, _hex(a["digest"], 32), _hex(a["ca_signature"], 65))
                for (r, _), a in zip(items, answers, strict=False)
            ]
        except (KeyError, TypeError, ValueError) as exc:
            where = self._http.base_url
            raise CAUnavailableError(f"ca: {where} answered malformed: {exc}") from exc
        if refused is None:
            return done, None
        if not isinstance(refused, dict):
            raise CAUnavailableError(f"ca: {self._http.base_url} answered a malformed refusal")
        return done, CAError(
            str(refused.get("error", "error")),
            str(refused.get("field", "?")),
            str(refused.get("detail", "")),
        )

    def countersign_batch(
        self, items: Sequence[tuple[Record, bytes]], submitter: str
    ) -> BatchCertificate:
        body = {
            "submitter": submitter,
            "items": [{"record": r.to_dict(), "signature": "0x" + s.hex()} for r, s in items],
        }
        data = self._request("POST", "/countersign/batch", body)
        if self._domain is None:
            info = self.info()
            self._domain = Domain(info["chain_id"], info["contract"])
        domain = self._domain
        tree = MerkleTree.build([r.digest(domain) for r, _ in items])
        if "0x" + tree.root.hex() != data["root"]:
            raise ChainsenseError("ca: batch root from the CA differs from the local tree")
        return BatchCertificate(
            tuple(r for r, _ in items),
            tree,
            data["submitter"],
            bytes.fromhex(data["ca_signature"][2:]),
        )


def _hex(value: object, length: int) -> bytes:
    """0x-hex of ``length`` bytes from a CA answer (ValueError otherwise)."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError("not 0x-hex")
    raw = bytes.fromhex(value[2:])
    if len(raw) != length:
        raise ValueError(f"{len(raw)} bytes, expected {length}")
    return raw
