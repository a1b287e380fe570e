# Vault Enterprise >= 1.16 only (OpenBao and Vault Community reject these keys): lets the daemon
# subscribe to KV v2 events, which only wake its reconcile loop early.
# https://developer.hashicorp.com/vault/docs/concepts/events#policies
path "sys/events/subscribe/kv-v2/*" {
  capabilities = ["read", "subscribe"]
  subscribe_event_types = ["kv-v2/data-write", "kv-v2/metadata-patch"]
}

# Which secrets' events the daemon may receive: those it manages, and the request prefix.
path "secret/metadata/jfrog/*" {
  capabilities = ["list", "subscribe"]
  subscribe_event_types = ["kv-v2/data-write", "kv-v2/metadata-patch"]
}
path "secret/metadata/jfrog-rotator-requests/*" {
  capabilities = ["list", "subscribe"]
  subscribe_event_types = ["kv-v2/data-write", "kv-v2/metadata-patch"]
}
