"""Rule evaluation: which members a reward's rules select, computed over the whole population at
once (one query or one pass over loaded rows per rule, never one query per member)."""
