"""Backend tests use the session servers of tests/conftest.py (openbao, moto_server)."""
