"""The edge node: sources, perception, rules, outbox, uplink, retention, OTA."""
