"""Azure ML v1 compatibility facade: ``from modelport.azureml.core import Workspace, Model, ...``.

Ported notebooks change only the import prefix (``azureml.core`` → ``modelport.azureml.core``).
Every class here maps Azure ML's names and argument shapes onto modelport's own classes; no
behaviour is implemented twice. See ``docs/migrating-from-azureml.md``.
"""
