# Shared by setup-approle.sh and setup-kubernetes-auth.sh (sourced, not run): finds the CLI and
# checks the address and token. Works with OpenBao's `bao` and HashiCorp's `vault`, which take the
# same commands; both are given the address and token through VAULT_ADDR / VAULT_TOKEN (bao also
# through BAO_ADDR / BAO_TOKEN, set here from them).

fail() { echo "$(basename "$0"): $*" >&2; exit 2; }

VAULT_CLI="${VAULT_CLI:-$(command -v bao || command -v vault || true)}"
[ -n "$VAULT_CLI" ] || fail "neither bao (OpenBao) nor vault is on PATH (or set VAULT_CLI)"
command -v "$VAULT_CLI" > /dev/null || fail "VAULT_CLI=$VAULT_CLI is not a command"

VAULT_ADDR="${VAULT_ADDR:-${BAO_ADDR:-}}"
VAULT_TOKEN="${VAULT_TOKEN:-${BAO_TOKEN:-}}"
[ -n "$VAULT_ADDR" ] || fail "set VAULT_ADDR (or BAO_ADDR) to your Vault's address, e.g. https://vault.example.com:8200"
[ -n "$VAULT_TOKEN" ] || fail "set VAULT_TOKEN (or BAO_TOKEN) to a token that may write policies and auth methods"
export VAULT_ADDR VAULT_TOKEN BAO_ADDR="$VAULT_ADDR" BAO_TOKEN="$VAULT_TOKEN"
if [ -n "${VAULT_NAMESPACE:-}" ]; then export BAO_NAMESPACE="$VAULT_NAMESPACE"; fi

HERE="$(cd "$(dirname "$0")" && pwd)"

cli() { "$VAULT_CLI" "$@"; }

# enable_auth TYPE MOUNT: enables the auth method at MOUNT unless something is mounted there already.
enable_auth() {
  local mounted
  mounted="$(cli auth list -format=json)"  # whole, not piped: grep -q would cut the pipe (pipefail)
  if grep -q "\"$2/\"" <<< "$mounted"; then
    echo "auth method at $2/ already enabled"
  else
    cli auth enable -path="$2" "$1" > /dev/null
    echo "enabled the $1 auth method at $2/"
  fi
}

# write_policy NAME FILE
write_policy() {
  [ -f "$2" ] || fail "no policy file $2"
  cli policy write "$1" "$2" > /dev/null
  echo "wrote policy $1 from $2"
}
