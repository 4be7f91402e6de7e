"""What users run: the CLI, the REST and OpenAI-compatible APIs, and the shared services."""
