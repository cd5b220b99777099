"""The [ledger] config section: validation naming the field, and the chain it selects."""

from __future__ import annotations

import json
import re

import pytest

from chainsense.chain.embedded import EmbeddedChain
from chainsense.chain.errors import ChainError
from chainsense.chain.keys import checksum
from chainsense.config import from_mapping
from chainsense.errors import ChainsenseError, ConfigError
from chainsense.ledger.config import LedgerConfig, load_ledger_config, open_chain
from chainsense.ledger.deployment import Deployment


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
        ({"ca_urls": ["ftp://ca"]}, "ledger.ca_urls[0]"),
        ({"ca_urls": ["http://a:1", "http://a:1"]}, "ledger.ca_urls"),
        ({"ca_urls": [f"http://a:{i}" for i in range(17)]}, "ledger.ca_urls"),
        ({"threshold": 0}, "ledger.threshold"),
        ({"threshold": 17}, "ledger.threshold"),
        ({"ca_urls": ["http://a:1", "http://a:2"], "threshold": 3}, "ledger.threshold"),
        ({"threshold": "2"}, "ledger.threshold"),
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


def test_the_consortium_settings_load_and_default_to_one_ca(tmp_path) -> None:
    assert LedgerConfig().ca_services == ("http://127.0.0.1:8600",)
    assert LedgerConfig().threshold == 1
    path = tmp_path / "run.toml"
    path.write_text(
        '[ledger]\nca_urls = ["http://127.0.0.1:8601", "http://127.0.0.1:8602"]\nthreshold = 2\n'
    )
    cfg = load_ledger_config(path)
    assert cfg.ca_services == ("http://127.0.0.1:8601", "http://127.0.0.1:8602")
    assert cfg.threshold == 2


def test_deployment_files_record_the_set_and_k(tmp_path) -> None:
    a, b = "0x" + "b2" * 20, "0x" + "a1" * 20
    dep = Deployment(5, "0x" + "11" * 20, (a, b), 2, 7, rpc=("http://127.0.0.1:1",))
    back = Deployment.read(dep.write(tmp_path / "ledger.json"))
    assert back.cas == tuple(sorted((checksum(a), checksum(b)), key=lambda x: int(x, 16)))
    assert back.threshold == 2
    raw = json.loads((tmp_path / "ledger.json").read_text())
    for change, message in [
        ({"threshold": 3}, "threshold: must be in 1..2"),
        ({"threshold": True}, "deployment.threshold"),
        ({"cas": [a, "0x12"]}, "deployment.cas[1]"),
        ({"cas": "0x" + "a1" * 20}, "deployment.cas: must be a list"),
    ]:
        (tmp_path / "bad.json").write_text(json.dumps(raw | change))
        with pytest.raises(ChainsenseError, match=re.escape(message)):
            Deployment.read(tmp_path / "bad.json")
    single = {k: v for k, v in raw.items() if k not in ("cas", "threshold")} | {"ca": a}
    (tmp_path / "old.json").write_text(json.dumps(single))
    assert Deployment.read(tmp_path / "old.json").ca_set.cas == (checksum(a),)
