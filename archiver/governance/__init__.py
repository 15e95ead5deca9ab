"""Governance: who approved which policy text (more to come: holds, signed digests)."""
