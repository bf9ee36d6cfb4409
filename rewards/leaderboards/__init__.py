"""Leaderboard read models: per-member counters by calendar period, kept with every write.

Computing a window by grouping the ledger costs time that grows with the ledger (seconds for a
year at 10M entries). Instead every write that changes a leaderboard (an award or its revocation,
kudos, a ledger entry) adds its deltas to `leaderboard_counter` rows, one per member, period
(week, month, quarter, year, all, in `TIMEZONE`) and narrowing (everything, a reward category, a
kudos tag), with a column per metric, in the same transaction. A leaderboard is then the top of
one metric's index range. `rebuild` recomputes every counter from the facts.

- `periods`: the period keys an instant falls in;
- `counters`: the deltas of each kind of write and the upsert that applies them;
- `rebuild`: recompute from the ledger, awards and kudos (CLI and start-up).
"""
