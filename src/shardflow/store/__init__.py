"""L3: durable state: the run journal (resume) and the human-task store (SQLite by default)."""
