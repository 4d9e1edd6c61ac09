"""The rights registry: parties, recordings, works, agreements, opt-outs, deliveries."""
