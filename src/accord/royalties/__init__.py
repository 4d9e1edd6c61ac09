"""Usage events, royalty runs, the double-entry ledger, statements and their exports."""
