"""The organisations of ``chainsense run --orgs N``: whose CA keys countersign the records.

On the embedded chain (and a network file without organisations) each organisation's CA key
is derived from the run's seed, as the single CA's always was. A network file written by
``chainsense network up --orgs N`` lists its organisations, each with its CA (address, key file,
host, port; read by :func:`chainsense.devnet.netfile.load`, the one reader of that file); the
run then uses those CA keys, so that the records are countersigned by the organisations that
run the network's sealers.
"""

from __future__ import annotations

from chainsense.chain.keys import KeyPair, load_key
from chainsense.devnet import netfile
from chainsense.errors import ConfigError
from chainsense.ledger.config import LedgerConfig


def organisation_ca_keys(cfg: LedgerConfig) -> list[KeyPair]:
    """The CA keys a network file names (empty: none named, derive them from the seed)."""
    if cfg.backend != "network" or not netfile.network_file(cfg.network).is_file():
        return []  # opening the chain reports a missing file
    info = netfile.load(cfg.network)
    keys = []
    for i, org in enumerate(info.orgs):
        field = f"network.orgs[{i}].ca.key_file"
        key = load_key(info.directory / org.ca.key_file)
        if key.address.lower() != org.ca.address.lower():
            raise ConfigError(field, f"holds {key.address}, not {org.name}'s {org.ca.address}")
        keys.append(key)
    return keys
