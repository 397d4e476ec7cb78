"""Talking to Neo N3: a JSON-RPC client with failover, addresses and GAS transfers.

``rpc`` is the only module that does network I/O; ``addresses`` and the parsing half of
``transfers`` are pure functions over the node's JSON, so they can be tested from recorded
answers. ``devnet`` is the dev chain's faucet and is never used against a real network.
"""
