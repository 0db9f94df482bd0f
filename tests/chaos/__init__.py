"""Chaos runs: the whole pipeline under process kills and outages, audited for loss."""
