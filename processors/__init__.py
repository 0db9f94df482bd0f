"""Processors, in data-flow order: ``detector`` -> ``downloader`` -> ``projection``."""
