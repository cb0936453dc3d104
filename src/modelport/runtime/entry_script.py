"""Loading the user's entry script and working out how its ``run()`` wants to be called.

Rules (docs/scoring.md, "Entry scripts"): the file is imported as module ``entry_module``; without a
file, ``import main`` from ``sys.path``; the module must define ``init`` and ``run``; a
``driver_module`` attribute (a module) with its own ``run`` is called instead of the outer ``run``; ``run()``
takes no ``*args``/``**kwargs``/positional-only parameters, at least one input parameter, and an
optional ``request_headers``; ``@rawhttp`` cannot be combined with ``@input_schema``.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from modelport.errors import UserErrorException
from modelport.runtime.aml_http import is_rawhttp

MODULE_NAME = "entry_module"
REQUEST_HEADERS = "request_headers"


class RunStyle(enum.Enum):
    """How ``run()`` receives its input."""

    PLAIN = "plain"  # the body as one str
    SCHEMA = "schema"  # JSON object keys as keyword arguments (inference-schema)
    RAW = "raw"  # the whole request (@rawhttp)


@dataclass(frozen=True)
class EntryScript:
    """A loaded entry script: its ``init``, the ``run`` to call, and how to call it."""

    module: ModuleType
    init: Callable[[], Any]
    run: Callable[..., Any]
    style: RunStyle
    input_parameters: tuple[str, ...]
    defaults: dict[str, Any]
    takes_request_headers: bool


def load_entry_script(path: Path | None) -> EntryScript:
    """Import the entry script (``main`` from ``sys.path`` when ``path`` is None) and check its shape.

    Raises ``UserErrorException`` naming the file and the rule it breaks; import errors propagate.
    """
    module = _import(path)
    where = str(path) if path is not None else "main.py"
    for name in ("init", "run"):
        if not callable(getattr(module, name, None)):
            raise UserErrorException(
                f"The entry script {where} does not define a function {name}(); "
                "an Azure ML entry script needs both init() and run(...)."
            )
    run = module.run
    driver = getattr(module, "driver_module", None)
    if isinstance(driver, ModuleType) and callable(getattr(driver, "run", None)):
        run = driver.run
    return _classify(module, run, where)


def _import(path: Path | None) -> ModuleType:
    if path is None:
        try:
            return importlib.import_module("main")
        except ModuleNotFoundError as exc:
            if exc.name != "main":
                raise
            raise UserErrorException(
                "No score script found. Expected score script main.py on the Python path; "
                "pass --entry_script or set AZUREML_ENTRY_SCRIPT."
            ) from exc
    if not path.is_file():
        raise UserErrorException(
            f"The entry script {path} does not exist (No such file or directory.); "
            "check --entry_script / AZUREML_ENTRY_SCRIPT and AML_APP_ROOT."
        )
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise UserErrorException(f"The entry script {path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def _classify(module: ModuleType, run: Callable[..., Any], where: str) -> EntryScript:
    from inference_schema import schema_util

    raw = is_rawhttp(run)
    decorated = schema_util.is_schema_decorated(run)
    if raw and decorated:
        raise UserErrorException(
            f"run() in {where} uses both @rawhttp and @input_schema; use one of them "
            "(@rawhttp receives the whole request, @input_schema the parsed JSON arguments)."
        )
    parameters = inspect.signature(run).parameters.values()
    inputs: list[str] = []
    defaults: dict[str, Any] = {}
    takes_headers = False
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            raise UserErrorException(
                f"run() in {where} has the parameter {parameter}; *args, **kwargs and positional-only "
                "parameters are not supported, name every input parameter."
            )
        if parameter.name == REQUEST_HEADERS:
            takes_headers = True
            continue
        inputs.append(parameter.name)
        if parameter.default is not parameter.empty:
            defaults[parameter.name] = parameter.default
    if not inputs:
        message = (
            'run() needs to accept an argument other than "request_headers".'
            if takes_headers
            else "run() needs to accept an argument for input data."
        )
        raise UserErrorException(f"{message} (in {where})")
    style = RunStyle.RAW if raw else RunStyle.SCHEMA if decorated else RunStyle.PLAIN
    return EntryScript(
        module=module,
        init=module.init,
        run=run,
        style=style,
        input_parameters=tuple(inputs),
        defaults=defaults,
        takes_request_headers=takes_headers,
    )
