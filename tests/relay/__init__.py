"""Relay tests: real relay processes on loopback, real SQLite; and the pure pieces."""
