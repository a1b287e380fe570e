# Policy for a consumer that only reads one rotated secret: here the Vault Secrets Operator or the
# External Secrets Operator copying the ci-docker pull secret into Kubernetes
# (deploy/kubernetes/examples/). Read the current version, nothing else.
path "secret/data/jfrog/ci-docker" {
  capabilities = ["read"]
}
