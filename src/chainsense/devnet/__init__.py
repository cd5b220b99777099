"""Local geth Clique private networks of sealers and followers, for real runs and tests.

The paper's chain is a private Ethereum network of mining nodes (which seal blocks) and
non-mining nodes (which relay transactions and serve queries). This package runs exactly that
with the reference client, geth v1.13.15 (the last release line that seals Clique
proof-of-authority blocks), on one machine: every node binds to 127.0.0.1 only, peers statically
with every other node (no discovery), and the whole network is described by its network file
(:mod:`~chainsense.devnet.netfile`). Sealer keys, their passwords and the faucet key are generated
per network, written 0600 and never printed. Nodes run detached (own session) so that ``chainsense
network up`` can return; they are stopped by the process ids recorded in the file, after checking
the id still belongs to that node.

Modules: ``netfile`` (the one reader and writer of network.json), ``genesis`` (spec, keys,
genesis, ``geth init``), ``geth`` (the binary and a node's command line), ``processes`` (ports and
pids, also used by the experiments' servers), ``health`` (probes, status, readiness),
``lifecycle`` (up, down, stop, start), ``services`` (extra processes such as the organisations'
CA services, stopped with the nodes), ``clique`` (signer votes) and ``bundle`` (one
organisation's part, exported to run on its own host and joined there). The names below are the
public face.
"""

from chainsense.devnet.bundle import export, join
from chainsense.devnet.clique import VoteResult, propose, quorum, withdraw
from chainsense.devnet.genesis import NetworkSpec, clique_genesis
from chainsense.devnet.geth import find_geth, geth_available
from chainsense.devnet.health import NodeStatus, rpc_call, signers, status, wait_ready
from chainsense.devnet.lifecycle import down, kill_node, running, start_node, stop_node, up
from chainsense.devnet.netfile import (
    NETWORK_FILE,
    CaInfo,
    NetworkInfo,
    NodeInfo,
    OrgInfo,
    load,
    network_file,
    save,
)
from chainsense.devnet.processes import free_ports, pid_alive, stop_child
from chainsense.devnet.services import (
    ServiceStatus,
    service_status,
    start_service,
    stop_services,
    wait_services,
)

__all__ = [
    "NETWORK_FILE",
    "CaInfo",
    "NetworkInfo",
    "NetworkSpec",
    "NodeInfo",
    "NodeStatus",
    "OrgInfo",
    "ServiceStatus",
    "VoteResult",
    "clique_genesis",
    "down",
    "export",
    "find_geth",
    "free_ports",
    "geth_available",
    "join",
    "kill_node",
    "load",
    "network_file",
    "pid_alive",
    "propose",
    "quorum",
    "rpc_call",
    "running",
    "save",
    "service_status",
    "signers",
    "start_node",
    "start_service",
    "status",
    "stop_child",
    "stop_node",
    "stop_services",
    "up",
    "wait_ready",
    "wait_services",
    "withdraw",
]
