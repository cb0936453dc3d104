"""``Model.deploy`` and ``Webservice.update``: turn models, an inference config and a deployment
config into a new generation of a service's desired state, then hand it to the target."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from modelport._notes import note
from modelport.compute import targets as attached_targets
from modelport.config.deployment import (
    DeploymentConfig,
    EffectiveDeploymentConfig,
    LocalDeploymentConfig,
    check_settings_effect,
)
from modelport.config.inference import InferenceConfig
from modelport.errors import UserErrorException, WebserviceException
from modelport.names import check_service_name
from modelport.registry.environment import Environment
from modelport.registry.environment_store import register_environment
from modelport.registry.model import Model
from modelport.service.driver import driver_for
from modelport.service.machine import this_machine
from modelport.service.spec import LOCAL_TARGET, ComputeType, EnvironmentRef, ModelRef, ServiceSpec, SourceRef
from modelport.service.store import write_service
from modelport.service.webservice import Webservice
from modelport.workspace.artifacts import NoProgress
from modelport.workspace.blobs import discard_unreferenced_blobs
from modelport.workspace.filesets import LocalFile, StoredFile, check_readable, collect_files, store_files

if TYPE_CHECKING:
    from modelport.workspace import Workspace

# Never shipped with the source directory: caches that differ per machine.
SKIPPED_SOURCE_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".modelport"})
NO_CODE_FRAMEWORKS = ("Onnx", "ScikitLearn", "TensorFlow", "Multi")


def resolve_models(workspace: Workspace, models: Sequence[Model | str]) -> tuple[ModelRef, ...]:
    """Model objects or ``"name:version"`` ids → references to the registered rows."""
    refs = []
    for item in models:
        model = Model(workspace, id=item) if isinstance(item, str) else item
        if not isinstance(model, Model):
            raise UserErrorException(
                f"Invalid models entry {item!r}: pass Model objects or ids 'name:version' (e.g. 'iris:1')."
            )
        refs.append(ModelRef(name=model.name, version=model.version, db_id=model.db_id, root=model.root))
    names = [r.name for r in refs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserErrorException(
            f"models lists {', '.join(duplicates)} more than once; a service serves one version per "
            "model name."
        )
    return tuple(refs)


def no_code_refusal(models: Sequence[ModelRef], workspace: Workspace) -> UserErrorException:
    """Azure ML's error for models given without an InferenceConfig (no-code deployment)."""
    if len(models) != 1:
        return UserErrorException(
            "You must provide an InferenceConfig when deploying zero or multiple models."
        )
    framework = Model(workspace, id=models[0].id).model_framework
    if framework not in NO_CODE_FRAMEWORKS:
        return UserErrorException(
            f"You must provide an InferenceConfig when deploying a model with model_framework set to "
            f"{framework}. No-code deployment is only supported for the following frameworks: "
            f"{', '.join(NO_CODE_FRAMEWORKS)}."
        )
    return UserErrorException(
        f"No-code deployment of {framework} models is not supported by modelport yet. Fix: pass an "
        "InferenceConfig with an entry script (score.py) that loads the model."
    )


def resolve_environment(workspace: Workspace, name: str, config: InferenceConfig) -> EnvironmentRef | None:
    """Register the inference config's environment (or the legacy conda file's) and reference it.

    ``None``: no environment given, so replicas run in the workspace's own Python.
    """
    env: Environment | None = config.environment
    if env is None and config.conda_file:
        conda = Path(config.source_directory or ".") / config.conda_file
        env = Environment.from_conda_specification(f"{name}-env", str(conda))
    if env is None:
        return None
    record = register_environment(workspace, env)
    registered = record.environment
    return EnvironmentRef(
        name=registered.name,
        version=registered.version,
        definition=registered.to_dict(),
        content_hash=registered.content_hash,
    )


def collect_source(config: InferenceConfig) -> tuple[SourceRef, list[LocalFile]]:
    """The source directory's files (or the entry script alone), readable, in the app root's layout."""
    entry_script = config.entry_script
    if not entry_script:  # checked when the config was made; a caller may have cleared it since
        raise WebserviceException("Error, need to specify entry_script.")
    if config.source_directory:
        folder = Path(config.source_directory)
        files = collect_files(folder, "source_directory", skip_dirs=SKIPPED_SOURCE_DIRS)
        entry = f"{folder.name}/{Path(entry_script).as_posix()}"
        directory: str | None = folder.name
    else:
        script = Path(entry_script)
        files = collect_files(script, "entry_script")
        entry = script.name
        directory = None
    check_readable(files, "source file")
    return SourceRef(directory=directory, entry_script=entry, file_count=len(files)), files


def snapshot_source(
    workspace: Workspace, config: InferenceConfig
) -> tuple[SourceRef, list[StoredFile], list[str]]:
    """Store the source directory (or the entry script alone) content-addressed.

    Returns the reference, the stored files and the digests this call created (for cleanup).
    """
    source, files = collect_source(config)
    stored, created = store_files(workspace, files, NoProgress())
    return source, stored, created


def resolve_target(
    workspace: Workspace, deployment_config: DeploymentConfig | None, deployment_target: Any
) -> tuple[str, str]:
    """(compute type, target name): the named attached target, else the local target."""
    name = None
    if deployment_config is not None:
        name = getattr(deployment_config, "compute_target_name", None)
    if name is None and deployment_target is not None:
        name = (
            deployment_target
            if isinstance(deployment_target, str)
            else getattr(deployment_target, "name", None)
        )
    if name in (None, LOCAL_TARGET) or isinstance(deployment_config, LocalDeploymentConfig):
        return "local", LOCAL_TARGET
    record = attached_targets.require_target(workspace, name)
    return record.compute_type, record.name


def with_keys(
    effective: EffectiveDeploymentConfig, previous: EffectiveDeploymentConfig | None = None
) -> EffectiveDeploymentConfig:
    """Fill in generated keys (or keep the service's current ones) where none were given."""
    primary = (
        effective.primary_key or (previous.primary_key if previous else None) or secrets.token_urlsafe(24)
    )
    secondary = (
        effective.secondary_key or (previous.secondary_key if previous else None) or secrets.token_urlsafe(24)
    )
    return effective.model_copy(update={"primary_key": primary, "secondary_key": secondary})


def deploy(
    workspace: Workspace,
    name: str,
    models: Sequence[Model | str],
    inference_config: InferenceConfig | None = None,
    deployment_config: DeploymentConfig | None = None,
    deployment_target: Any = None,
    overwrite: bool = False,
    show_output: bool = False,
) -> Webservice:
    """Record a new service (or, with ``overwrite``, a new generation of it) and start it.

    Returns at once, as Azure ML did; ``wait_for_deployment()`` follows it to Healthy or Failed.
    Everything is validated before anything is stored.
    """
    check_service_name(name)
    refs = resolve_models(workspace, models)
    if inference_config is None:
        raise no_code_refusal(refs, workspace)
    if deployment_config is None:
        deployment_config = LocalDeploymentConfig()
    deployment_config.validate_configuration()
    check_settings_effect(deployment_config.given(), "deploy")
    compute_type, target = resolve_target(workspace, deployment_config, deployment_target)
    driver = driver_for(compute_type, target)
    effective = with_keys(deployment_config.effective())
    driver.check(workspace, effective)
    environment = resolve_environment(workspace, name, inference_config)
    source, files, created = snapshot_source(workspace, inference_config)
    spec = ServiceSpec(
        name=name,
        # ServiceSpec checks the stored type at run time; driver_for above refused one without a driver.
        compute_type=cast(ComputeType, compute_type),
        compute_target=target,
        models=refs,
        source=source,
        environment=environment,
        deployment=effective,
        token_secret=secrets.token_hex(32),
        description=effective.description or inference_config.description,
        tags=dict(effective.tags),
        properties=dict(effective.properties),
    )

    # A local service belongs to the machine it is deployed from: only that machine's agent runs it.
    machine = this_machine() if compute_type == "local" else None
    try:
        generation = write_service(
            workspace,
            spec,
            files,
            create=True,
            overwrite=overwrite,
            message="Deployment requested",
            machine=machine,
        )
    except BaseException:
        discard_unreferenced_blobs(workspace, created)
        raise
    if show_output:
        _print_summary(spec)
    driver.submit(workspace, name)
    service = Webservice(workspace, name)
    service._pending_generation = generation
    return service


def _print_summary(spec: ServiceSpec) -> None:
    env = spec.environment
    note(f"Deploying service {spec.name} to the {spec.compute_target} target")
    note(f"  models: {', '.join(m.id for m in spec.models) or '(none)'}")
    note(f"  entry script: {spec.source.entry_script}")
    note(f"  environment: {f'{env.name}:{env.version}' if env else 'the workspace Python'}")
