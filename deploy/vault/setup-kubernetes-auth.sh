#!/usr/bin/env bash
# Vault (or OpenBao) side of Vault's Kubernetes auth method for jfrog-token-rotator: the policy, the
# auth method and its config, and a role bound to one service account of one namespace and to the
# audience of its projected token. Nothing secret is created: the pod logs in with its own
# service-account token (deploy/kubernetes/overlays/vault-kubernetes-auth). Safe to run again.
#
#   export VAULT_ADDR=https://vault.example.com:8200 VAULT_TOKEN=...   # may write policies and auth methods
#   KUBERNETES_HOST=https://k8s.example.com:6443 KUBERNETES_CA_CERT=./k8s-ca.pem \
#     deploy/vault/setup-kubernetes-auth.sh
#
# Settings (environment):
#   KUBERNETES_HOST      required: the API server Vault asks to review tokens (TokenReview)
#   KUBERNETES_CA_CERT   a PEM file with the API server's CA     required unless VAULT_IN_CLUSTER=true
#   TOKEN_REVIEWER_JWT_FILE  a token Vault reviews with         default: none, Vault uses each pod's own
#                        token, which then needs system:auth-delegator (the overlay's ClusterRoleBinding)
#   VAULT_IN_CLUSTER     true when Vault runs as a pod of this cluster: it then uses its own pod's CA
#                        and token (Vault's default)           default: false
#   KUBERNETES_MOUNT     the auth mount                           default: kubernetes
#   ROLE                 the role's name                          default: jfrog-rotator
#   NAMESPACE, SERVICE_ACCOUNT   who may log in                   default: jfrog-rotator, jfrog-rotator
#   AUDIENCE             the projected token's audience           default: vault
#   POLICY_FILE          the policy to grant                      default: jfrog-rotator-daemon.hcl beside this script
#   POLICY               its name in Vault                        default: the file's name without .hcl
#   TOKEN_TTL, TOKEN_MAX_TTL                                      default: 1h, 24h
#
# A consumer that only reads one secret, e.g. the Vault Secrets Operator copying a pull secret
# (deploy/kubernetes/examples/pull-secret-vso.yaml):
#   ROLE=jfrog-pull-secret-reader NAMESPACE=apps SERVICE_ACCOUNT=jfrog-pull-secret \
#   POLICY_FILE=deploy/vault/jfrog-pull-secret-reader.hcl KUBERNETES_HOST=... deploy/vault/setup-kubernetes-auth.sh
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

[ -n "${KUBERNETES_HOST:-}" ] || fail "set KUBERNETES_HOST to the Kubernetes API server's URL (https://...)"
KUBERNETES_MOUNT="${KUBERNETES_MOUNT:-kubernetes}"
ROLE="${ROLE:-jfrog-rotator}"
NAMESPACE="${NAMESPACE:-jfrog-rotator}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-jfrog-rotator}"
AUDIENCE="${AUDIENCE:-vault}"
POLICY_FILE="${POLICY_FILE:-$HERE/jfrog-rotator-daemon.hcl}"
POLICY="${POLICY:-$(basename "$POLICY_FILE" .hcl)}"
TOKEN_TTL="${TOKEN_TTL:-1h}"
TOKEN_MAX_TTL="${TOKEN_MAX_TTL:-24h}"

config=("kubernetes_host=$KUBERNETES_HOST")
if [ "${VAULT_IN_CLUSTER:-false}" != true ]; then
  [ -n "${KUBERNETES_CA_CERT:-}" ] || fail "set KUBERNETES_CA_CERT to a PEM file with the API server's CA (kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d), or VAULT_IN_CLUSTER=true"
  config+=("disable_local_ca_jwt=true")
fi
if [ -n "${KUBERNETES_CA_CERT:-}" ]; then
  [ -f "$KUBERNETES_CA_CERT" ] || fail "KUBERNETES_CA_CERT: no file $KUBERNETES_CA_CERT"
  config+=("kubernetes_ca_cert=@$KUBERNETES_CA_CERT")
fi
if [ -n "${TOKEN_REVIEWER_JWT_FILE:-}" ]; then
  [ -f "$TOKEN_REVIEWER_JWT_FILE" ] || fail "TOKEN_REVIEWER_JWT_FILE: no file $TOKEN_REVIEWER_JWT_FILE"
  config+=("token_reviewer_jwt=@$TOKEN_REVIEWER_JWT_FILE")
fi

write_policy "$POLICY" "$POLICY_FILE"
enable_auth kubernetes "$KUBERNETES_MOUNT"
cli write "auth/$KUBERNETES_MOUNT/config" "${config[@]}" > /dev/null
echo "configured $KUBERNETES_MOUNT/ for $KUBERNETES_HOST"
cli write "auth/$KUBERNETES_MOUNT/role/$ROLE" \
  bound_service_account_names="$SERVICE_ACCOUNT" bound_service_account_namespaces="$NAMESPACE" \
  audience="$AUDIENCE" token_policies="$POLICY" token_ttl="$TOKEN_TTL" token_max_ttl="$TOKEN_MAX_TTL" > /dev/null
echo "wrote role $KUBERNETES_MOUNT/$ROLE: service account $NAMESPACE/$SERVICE_ACCOUNT, audience $AUDIENCE, policy $POLICY"
