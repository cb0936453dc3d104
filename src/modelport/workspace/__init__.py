"""Workspaces: configuration, metadata store and artifact store."""

from modelport.workspace.workspace import Workspace, current_user

__all__ = ["Workspace", "current_user"]
