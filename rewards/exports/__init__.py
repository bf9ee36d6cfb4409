"""Exports and file delivery: reports of kudos, awards, the ledger, members, nominations,
redemptions and participation as CSV or JSON Lines, read in constant memory (`stream`), and a
member's own data as JSON (`mydata`).

- `kinds`: each export's columns and query; `KINDS` by name.
- `window`: the period (local days in TIMEZONE) an export covers.
- `stream`: the rows of an export, chunked (SQLite) or through a server-side cursor (PostgreSQL).
- `participation`: the per-department, per-month aggregate.
- `formats`: CSV and JSON Lines, written piece by piece.
- `files`: what a file is (`OutgoingFile`, from a recipe) and who delivers it (`FileDelivery`).
- `links`: signed, expiring download links (Teams).
- `mydata`: the member's data document.
"""

from rewards.exports.kinds import KINDS, ExportKind, kind_named
from rewards.exports.window import Window, window

__all__ = ["KINDS", "ExportKind", "Window", "kind_named", "window"]
