#!/usr/bin/env bash
# Vault (or OpenBao) side of the jfrog-token-rotator daemon with AppRole: the daemon's policy, the
# AppRole auth method, a role that grants only that policy, and the role id and a secret id for the
# daemon, written as 0600 files (never printed). Safe to run again: it updates the policy and the
# role, and issues one more secret id (earlier ones stay valid until their TTL).
#
#   export VAULT_ADDR=https://vault.example.com:8200 VAULT_TOKEN=...   # may write policies and auth methods
#   deploy/vault/setup-approle.sh ./approle                             # -> ./approle/role-id, ./approle/secret-id
#
# Then point the config at the two files (docs/configuration.md#vault):
#   auth: {method: approle, role_id_file: .../role-id, secret_id_file: .../secret-id}
# and hand them to the daemon: systemd's LoadCredential= (deploy/systemd), or the Kubernetes Secret
# jfrog-rotator-credentials (deploy/kubernetes/base).
#
# Settings (environment):
#   VAULT_CLI        bao or vault                  default: whichever is on PATH, bao first
#   APPROLE_MOUNT    the AppRole mount             default: approle
#   ROLE             the role's name               default: jfrog-rotator
#   POLICY_FILE      the policy to grant           default: jfrog-rotator-daemon.hcl beside this script
#   POLICY           its name in Vault             default: the file's name without .hcl
#   TOKEN_TTL, TOKEN_MAX_TTL   the daemon's Vault token: default 1h and 24h (it logs in again by itself)
#   SECRET_ID_TTL    how long a secret id works    default: 0, no expiry (run again to issue a new one)
#   BOUND_CIDRS      optional, e.g. 10.0.0.0/16: where the secret id and tokens may be used from
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

OUT_DIR="${1:-}"
[ -n "$OUT_DIR" ] || fail "usage: $0 OUT_DIR (where role-id and secret-id are written, mode 0600)"
APPROLE_MOUNT="${APPROLE_MOUNT:-approle}"
ROLE="${ROLE:-jfrog-rotator}"
POLICY_FILE="${POLICY_FILE:-$HERE/jfrog-rotator-daemon.hcl}"
POLICY="${POLICY:-$(basename "$POLICY_FILE" .hcl)}"
TOKEN_TTL="${TOKEN_TTL:-1h}"
TOKEN_MAX_TTL="${TOKEN_MAX_TTL:-24h}"
SECRET_ID_TTL="${SECRET_ID_TTL:-0}"

write_policy "$POLICY" "$POLICY_FILE"
enable_auth approle "$APPROLE_MOUNT"

bound=()
if [ -n "${BOUND_CIDRS:-}" ]; then
  bound=("secret_id_bound_cidrs=$BOUND_CIDRS" "token_bound_cidrs=$BOUND_CIDRS")
fi
cli write "auth/$APPROLE_MOUNT/role/$ROLE" \
  token_policies="$POLICY" token_ttl="$TOKEN_TTL" token_max_ttl="$TOKEN_MAX_TTL" \
  secret_id_ttl="$SECRET_ID_TTL" secret_id_num_uses=0 bind_secret_id=true "${bound[@]}" > /dev/null
echo "wrote role $APPROLE_MOUNT/$ROLE with policy $POLICY"

umask 077
mkdir -p "$OUT_DIR"
cli read -field=role_id "auth/$APPROLE_MOUNT/role/$ROLE/role-id" > "$OUT_DIR/role-id"
cli write -f -field=secret_id "auth/$APPROLE_MOUNT/role/$ROLE/secret-id" > "$OUT_DIR/secret-id"
echo "wrote $OUT_DIR/role-id and $OUT_DIR/secret-id (mode 0600)"
