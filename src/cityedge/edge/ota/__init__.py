"""Over-the-air updates on the node: python-tuf verification, A/B slots, health-gated commit.

`machine.py` is the pure state table; `updater.py` drives it; `client.py` is the TUF client;
`slots.py` the slots and the state file; `workload.py` the supervised process and its
health probe; `supervisor.py` the long-running `cityedge ota supervise` loop.
"""
