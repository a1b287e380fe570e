"""The leaf layer: options, redaction, the record, the token spec, the target model and schedule maths. Imports nothing of the project above it."""
