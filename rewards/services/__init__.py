"""Core services: each takes a Database, runs one transaction per command, returns plain views."""
