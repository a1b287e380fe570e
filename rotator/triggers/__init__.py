"""Vault-triggered renewal: Vault decides *when* a target is rotated.

The ground truth is state kept in Vault, read by a reconcile loop (:mod:`.reconcile`): a
``rotate_requested`` flag in the target's custom_metadata, request objects under a request
prefix, and the stored expiry coming near. Pushes only wake the loop early: the HTTP trigger
(:mod:`.http`), the ``jfrog-rotator trigger`` command (:mod:`.request`) and, on Vault
Enterprise, the events adapter (:mod:`.vault_events`).
"""
