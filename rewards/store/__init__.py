"""The SQLModel store: tables, engine set-up and migrations."""
