"""The ``local`` compute target: a per-workspace agent running replica processes on this machine.

Environments are materialised as virtualenvs by :mod:`modelport.compute.local.envbuild`.
"""
