"""Content credentials for generated outputs.

Every output carries one credential (what made it, from what, with which checks), in two
forms: a sidecar JSON signed with the operator's Ed25519 key
(:func:`accord.provenance.credential.write_sidecar`) and a C2PA manifest embedded in the
audio (:func:`accord.provenance.credential.embed_c2pa`), signed with an X.509 chain from
:mod:`accord.provenance.certificates`. :func:`accord.provenance.credential.verify_file`
checks either form. ``docs/credentials.md`` says what a credential claims and how to check it.
"""
