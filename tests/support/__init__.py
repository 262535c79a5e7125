"""Helpers shared by tests: a real relay process and a raw protocol client."""
