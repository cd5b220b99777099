"""The organisations of ``chainsense run --orgs N``: whose CA keys countersign the records.

On the embedded chain (and a network file without organisations) each organisation's CA key
is derived from the run's seed, as the single CA's always was. A network file written by
``chainsense network up --orgs N`` lists its organisations, each with a ``ca`` object
(``address``, ``key_file``, ``port``); the run then uses those CA keys, so that the records are
countersigned by the organisations that run the network's sealers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainsense import jsonlimits
from chainsense.chain.keys import KeyPair, checksum, load_key
from chainsense.devnet.netfile import network_file
from chainsense.errors import ConfigError
from chainsense.ledger.config import LedgerConfig

_MAX_BYTES = 1 << 20


def organisation_ca_keys(cfg: LedgerConfig) -> list[KeyPair]:
    """The CA keys a network file names (empty: none named, derive them from the seed)."""
    if cfg.backend != "network":
        return []
    path = network_file(cfg.network)
    if not path.is_file():
        return []  # opening the chain reports the missing file
    data = jsonlimits.load_file(path, "network file", max_bytes=_MAX_BYTES)
    orgs = data.get("orgs") if isinstance(data, dict) else None
    if orgs is None:
        return []
    if not isinstance(orgs, list) or not orgs:
        raise ConfigError("network.orgs", "must be a non-empty list of organisations")
    return [_org_key(org, i, path.parent) for i, org in enumerate(orgs)]


def _org_key(org: Any, i: int, directory: Path) -> KeyPair:
    field = f"network.orgs[{i}].ca"
    ca = org.get("ca") if isinstance(org, dict) else None
    if not isinstance(ca, dict):
        raise ConfigError(field, "missing (an object with address, key_file, port)")
    key_file = ca.get("key_file")
    if not isinstance(key_file, str) or not key_file:
        raise ConfigError(f"{field}.key_file", "must be a path")
    path = Path(key_file)
    key = load_key(path if path.is_absolute() else directory / path)
    if key.address != checksum(ca.get("address"), f"{field}.address"):
        raise ConfigError(f"{field}.key_file", f"holds {key.address}, not {ca.get('address')}")
    return key
