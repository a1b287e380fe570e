"""jfrog-token-rotator: keeps JFrog Platform access tokens fresh in Vault and AWS Secrets Manager."""

__version__ = "0.1.0"
