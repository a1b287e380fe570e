"""Secret-store adapters for jfrog-token-rotator (see ``backends.base``)."""
