"""Ethereum backends behind one interface: the embedded in-process EVM and JSON-RPC nodes.

``errors`` (ChainError, RevertError), ``keys`` (secp256k1 accounts), ``base`` (the Chain
interface), ``embedded`` (eth-tester + py-evm), ``rpc`` (endpoints with failover). Nothing here
knows the ledger contract or how a network was started.
"""
