"""Sub-commands of the `rewards` CLI, one module per group."""
