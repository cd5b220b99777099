"""The [ledger] config section: validation naming the field, and the chain it selects."""

from __future__ import annotations

import pytest

from chainsense.chain.embedded import EmbeddedChain
from chainsense.chain.errors import ChainError
from chainsense.config import from_mapping
from chainsense.errors import ChainsenseError, ConfigError
from chainsense.ledger.config import LedgerConfig, load_ledger_config, open_chain


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
        ({"rpc": ["http://127.0.0.1:1"]}, "ledger.rpc"),  # URLs but the embedded backend
        ({"colour": "red"}, "ledger.colour"),
    ],
)
def test_bad_settings_name_the_field(data, field) -> None:
    with pytest.raises(ConfigError) as exc:
        from_mapping(LedgerConfig, data, "ledger")
    assert exc.value.field == field


def test_open_chain_embedded_and_an_unreachable_rpc_node_fails_at_once() -> None:
    chain, funder = open_chain(LedgerConfig())
    assert isinstance(chain, EmbeddedChain) and funder is None
    cfg = from_mapping(LedgerConfig, {"backend": "rpc", "rpc": ["http://127.0.0.1:9"]}, "ledger")
    with pytest.raises(ChainError, match="no JSON-RPC endpoint reachable"):
        open_chain(cfg)


def test_network_backend_reads_the_network_file(tmp_path) -> None:
    (tmp_path / "network.json").write_text('{"chain_id": 5, "nodes": [{"rpc": "ftp://x"}]}')
    cfg = LedgerConfig(backend="network", network=str(tmp_path))
    with pytest.raises(ChainsenseError, match=r"nodes\[0\]\.rpc"):
        open_chain(cfg)


def test_the_ledger_section_is_loaded_and_flags_override_it(tmp_path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[ledger]\nmode = "record"\nbatch_size = 64\n')
    cfg = load_ledger_config(path)
    assert (cfg.mode, cfg.batch_size, cfg.backend) == ("record", 64, "embedded")
    assert load_ledger_config(None) == LedgerConfig()
    rpc = cfg.with_chain(("http://127.0.0.1:8545",))
    assert rpc.backend == "rpc" and rpc.mode == "record"
    net = cfg.with_chain(network=tmp_path)
    assert net.backend == "network" and net.network == str(tmp_path)
    with pytest.raises(ConfigError) as exc:
        cfg.with_chain(("http://127.0.0.1:8545",), tmp_path)
    assert exc.value.field == "network"
    path.write_text('[ledger]\nmode = "stream"\n')
    with pytest.raises(ConfigError) as exc:
        load_ledger_config(path)
    assert exc.value.field == "ledger.mode"
