"""Help pages drawn by typer with rich, without loading the parts of rich a help page never draws.

typer draws help with ``typer.rich_utils``, which imports ``rich.markdown`` (markdown-it) and
``rich.traceback`` (pygments) when it loads: about 0.13 s of the 0.41 s ``modelport --help`` took,
for ``Markdown``, used only with ``rich_markup_mode="markdown"``, and ``Traceback``, used only for
pretty tracebacks; modelport turns on neither. :func:`load_rich_help` imports ``typer.rich_utils``
while those two modules are stand-ins whose names load the real class on first use, then takes the
stand-ins out of ``sys.modules``, so the rest of the process imports the real modules. The page
drawn is typer's own (tests/cli/test_cli_startup.py compares it with the page drawn after a plain
import).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer import _click

# The modules typer.rich_utils imports at load time but a help page in rich markup never uses.
DEFERRED_MODULES = ("rich.markdown", "rich.traceback")


class _Deferred(type):
    """A class of a module not imported yet: the module loads on the first call or class attribute.

    A class (not a plain proxy) because ``typer.rich_utils`` writes it in annotations evaluated
    at load time (``Markdown | Text``). ``isinstance`` against it is never true; rich_utils
    does not use it so.
    """

    _module: str

    def _real(cls) -> Any:
        return getattr(importlib.import_module(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, attribute: str) -> Any:
        return getattr(cls._real(), attribute)


class _StandIn(types.ModuleType):
    """Stands for a module while ``typer.rich_utils`` loads: any name it asks for is deferred."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system probing (__path__, __spec__...) sees a plain module
            raise AttributeError(name)
        return _Deferred(name, (), {"_module": self.__name__})


def load_rich_help() -> None:
    """Import ``typer.rich_utils`` with :data:`DEFERRED_MODULES` deferred (no-op once imported)."""
    if "typer.rich_utils" in sys.modules:
        return
    stand_ins = {name: _StandIn(name) for name in DEFERRED_MODULES if name not in sys.modules}
    sys.modules.update(stand_ins)
    try:
        importlib.import_module("typer.rich_utils")
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]


class HelpGroup(TyperGroup):
    """typer's group, whose help page loads rich's help renderer through :func:`load_rich_help`."""

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """Draw typer's help page (its rich renderer loaded lightly first, when it draws with rich)."""
        if self.rich_markup_mode is not None:  # rich is one of modelport's dependencies
            load_rich_help()
        super().format_help(ctx, formatter)
