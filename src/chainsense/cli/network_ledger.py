"""``network up --ledger``: deploy the consortium's ledger on a fresh network and start one
``chainsense ca serve`` per organisation (imported by that command only: it loads web3).

The CA set is the organisations' CA keys from the network file, k is ``--threshold``. The CA
keys are funded (they send their governance approvals) and every service is recorded in the
network file, so that ``network down`` stops it with the nodes.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from chainsense import devnet as network
from chainsense.files import atomic_write
from chainsense.ledger.config import connect_network
from chainsense.ledger.contract import deploy_ledger
from chainsense.ledger.deployment import Deployment

DEPLOYMENT_FILE = "ledger.json"
CA_FUNDS_WEI = 10**18


def deploy_consortium(directory: Path, threshold: int) -> Deployment:
    """Deploy the ledger with the organisations' CAs and k, write ``ledger.json``, fund the CAs."""
    info = network.load(directory)
    cas = [org.ca.address for org in info.orgs]
    chain, faucet = connect_network(info.directory)
    try:
        ledger = deploy_ledger(chain, cas, threshold=threshold, deployer=faucet)
        dep = Deployment.of(ledger, network=str(info.directory))
        dep.write(info.directory / DEPLOYMENT_FILE)
        sent = [chain.send(faucet, to=a, value=CA_FUNDS_WEI, gas=21_000) for a in cas]
        for tx_hash in sent:  # all sent, then waited for: one block, not one per CA
            chain.wait(tx_hash)
    finally:
        chain.close()
    return dep


def start_cas(directory: Path, timeout: float) -> list[str]:
    """One ``ca serve`` per organisation on its planned host and port, each with its own
    registry and admin token file (0600) in the network directory; waits until all answer."""
    info = network.load(directory)
    d = info.directory
    urls = []
    for org in info.orgs:
        token = d / f"ca-{org.name}.token"
        atomic_write(token, secrets.token_hex(16) + "\n", mode=0o600)
        db = d / f"ca-{org.name}.db"
        host = f"[{org.ca.host}]" if ":" in org.ca.host else org.ca.host
        url = f"http://{host}:{org.ca.port}"
        argv = [sys.executable, "-m", "chainsense", "ca", "serve"]
        argv += ["--key", str(d / org.ca.key_file), "--db", str(db)]
        argv += ["--deployment", str(d / DEPLOYMENT_FILE), "--admin-token-file", str(token)]
        argv += ["--host", org.ca.host, "--port", str(org.ca.port)]
        network.start_service(d, f"ca-{org.name}", argv, url + "/ca", marker=str(db))
        urls.append(url)
    network.wait_services(d, timeout)
    return urls
