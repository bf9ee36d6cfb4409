"""Awarding many members at once (the sweep, scheduled jobs, event fan-out): `batch`."""
