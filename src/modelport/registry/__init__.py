"""The workspace registries: models and environments, versioned per name (1, 2, 3, ...).

Import the classes from their modules (``modelport.registry.model``, ``.environment``, ``.conda``)
or from the top level (``from modelport import Model, Environment``); the package itself imports
nothing, so that loading one registry does not load the others.
"""
