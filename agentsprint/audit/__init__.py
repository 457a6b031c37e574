"""Governance over the hash-chained event log: verify, locate tampering, anchor, export, timelines."""
