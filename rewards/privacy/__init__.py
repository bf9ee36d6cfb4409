"""Self-service privacy and data rights.

- `preferences`: each member's own choices (leaderboard visibility, celebrations, reply
  language), the defaults they override, and the SQL conditions the leaderboards and the
  celebration rules filter with.
- `erasure`: `/forget me` and its admin equivalents: personal data erased, the ledger kept whole
  under an anonymous placeholder.
"""
