"""The [ledger] config section: validation naming the field, and the chain it selects."""

from __future__ import annotations

import pytest

from chainsense.config import from_mapping
from chainsense.errors import ConfigError
from chainsense.ledger.chain import EmbeddedChain, RpcChain
from chainsense.ledger.config import LedgerConfig, chain_for


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"backend": "rpc"}, "ledger.rpc"),
        ({"rpc": ["ftp://x"]}, "ledger.rpc[0]"),
        ({"batch_size": 0}, "ledger.batch_size"),
        ({"ca_host": "0.0.0.0"}, "ledger.ca_host"),
        ({"ca_port": 70000}, "ledger.ca_port"),
        ({"mode": "stream"}, "ledger.mode"),
        ({"backend": "ganache"}, "ledger.backend"),
        ({"rpc_timeout": 0}, "ledger.rpc_timeout"),
        ({"colour": "red"}, "ledger.colour"),
    ],
)
def test_bad_settings_name_the_field(data, field) -> None:
    with pytest.raises(ConfigError) as exc:
        from_mapping(LedgerConfig, data, "ledger")
    assert exc.value.field == field


def test_backends() -> None:
    chain, funder = chain_for(LedgerConfig())
    assert isinstance(chain, EmbeddedChain) and funder is None
    cfg = from_mapping(LedgerConfig, {"backend": "rpc", "rpc": ["http://127.0.0.1:1"]}, "ledger")
    chain, _ = chain_for(cfg)
    assert isinstance(chain, RpcChain) and chain.endpoints[0].url == "http://127.0.0.1:1"
