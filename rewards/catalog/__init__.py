"""The reward catalogue: the seed's JSON format, validated into typed definitions."""
