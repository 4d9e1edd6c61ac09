"""Consented training sets: manifests, Merkle proofs, taint tracking."""
