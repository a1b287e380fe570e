# Policy for the jfrog-token-rotator daemon.
# Adjust the mount ("secret") and the path prefix of your targets ("jfrog/") to your config.
# bao policy write jfrog-rotator-daemon deploy/vault/jfrog-rotator-daemon.hcl

# The targets' records: read the current one, write the next one (compare-and-set).
path "secret/data/jfrog/*" {
  capabilities = ["create", "read", "update"]
}

# Their metadata: status and the reconcile loop read it (never the secret), the daemon records
# token facts and clears rotate_requested with a merge-patch, and lists what it manages.
path "secret/metadata/jfrog/*" {
  capabilities = ["read", "patch", "list"]
}

# Rotation requests: list them, read who asked and why, delete them once served.
path "secret/data/jfrog-rotator-requests/*" {
  capabilities = ["read"]
}
path "secret/metadata/jfrog-rotator-requests/*" {
  capabilities = ["list", "read", "delete"]
}

# The leader lease of several replicas (daemon.leader; the path deploy/kubernetes uses): read it,
# take it and renew it with compare-and-set. Adjust to your daemon.leader.path.
path "secret/data/jfrog-rotator/leader" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/jfrog-rotator/leader" {
  capabilities = ["read"]
}

# The replicas' per-rotation claims (daemon.leader): before it mints, the leader writes
# jfrog-rotator-claims/<target path> with compare-and-set, naming the version it read.
path "secret/data/jfrog-rotator-claims/*" {
  capabilities = ["create", "read", "update"]
}

# Vault Enterprise event notifications (backend option events: true). On OpenBao and Vault
# Community the subscription answers 404 and the daemon switches the listener off; Vault
# Enterprise also needs deploy/vault/jfrog-rotator-daemon-events-enterprise.hcl.
path "sys/events/subscribe/kv-v2/*" {
  capabilities = ["read"]
}

# KV version detection of the mount.
path "sys/internal/ui/mounts/secret" {
  capabilities = ["read"]
}

# Keeping its own login alive (also in Vault's default policy).
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
