"""The workspace registries: models and environments, versioned per name (1, 2, 3, ...)."""
