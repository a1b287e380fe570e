# Vault/OpenBao Agent that turns a change in Vault into a rotation request.
#
# A change-management job (or a person) writes secret/ops/rotate/ci-deployer (any field, e.g.
# ticket=CHG-1234). The agent re-renders within a second (static_secret_render_interval) and its
# template command runs `jfrog-rotator trigger` with the agent's own token, whose policy is
# deploy/vault/jfrog-rotator-requester.hcl plus read on secret/data/ops/rotate/*.
#
#   bao agent -config=deploy/vault/agent-trigger.hcl
#
# The requester's AppRole, with the files read below (setup-approle.sh writes role-id and secret-id):
#   ROLE=jfrog-rotator-requester POLICY_FILE=deploy/vault/jfrog-rotator-requester.hcl \
#     deploy/vault/setup-approle.sh /etc/jfrog-rotator/requester
# (then add read on secret/data/ops/rotate/* to that role's policies, for the template below).
vault {
  address = "https://vault.example.com:8200"
}

auto_auth {
  method "approle" {
    config = {
      role_id_file_path                   = "/etc/jfrog-rotator/requester/role-id"
      secret_id_file_path                 = "/etc/jfrog-rotator/requester/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
  sink "file" {
    config = {
      path = "/run/jfrog-rotator/requester-token"
      mode = 0600
    }
  }
}

template_config {
  static_secret_render_interval = "1s"
  exit_on_retry_failure         = true
}

template {
  contents    = "{{ with secret \"secret/data/ops/rotate/ci-deployer\" }}{{ .Data.metadata.version }} {{ .Data.data.ticket }}{{ end }}"
  destination = "/run/jfrog-rotator/ci-deployer.request"
  # Runs on every change of the watched secret (and once at start: the rotation is idempotent
  # in effect, it only replaces the token once more).
  command     = "sh -c 'VAULT_TOKEN=$(cat /run/jfrog-rotator/requester-token) jfrog-rotator trigger -c /etc/jfrog-rotator/rotator.yaml ci-deployer --reason \"change $(cut -d\" \" -f2 /run/jfrog-rotator/ci-deployer.request)\"'"
}
