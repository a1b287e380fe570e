# Policy for people and systems that may ASK for a rotation but must not see the token.
# Adjust the mount ("secret") and the path prefix ("jfrog/") to your config.
# bao policy write jfrog-rotator-requester deploy/vault/jfrog-rotator-requester.hcl

# Set rotate_requested=true on a target's metadata (jfrog-rotator trigger, POST /v1/trigger/...).
path "secret/metadata/jfrog/*" {
  capabilities = ["patch"]
}

# Or drop a request object (jfrog-rotator trigger --request): write-only, nothing to read back.
path "secret/data/jfrog-rotator-requests/*" {
  capabilities = ["create"]
}

# Nothing on secret/data/jfrog/*: the token itself stays unreadable (403).
