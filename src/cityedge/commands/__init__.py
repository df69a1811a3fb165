"""Command groups of the `cityedge` CLI, one module per domain (heavy imports inside commands)."""
