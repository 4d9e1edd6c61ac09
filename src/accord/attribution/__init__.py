"""Which training works shaped an output (attribution) and proof that it copies nobody (the replication guard)."""
