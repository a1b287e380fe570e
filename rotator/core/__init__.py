"""The leaf layer: options, redaction, the record, the token spec, the target model and schedule maths.

It imports nothing of the project above it (tests/test_import_direction.py).
"""
