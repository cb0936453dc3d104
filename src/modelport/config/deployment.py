"""Deployment configurations for the ``kubernetes`` (Azure ML's ``aks``) and ``local`` compute types.

``KubernetesDeploymentConfig`` (alias ``AksServiceDeploymentConfiguration``) carries the 31 knobs
of ``AksWebservice.deploy_configuration`` exactly as given (``None`` = not given) and validates in
its constructor like Azure ML did: every failed rule at once, in one ``ConfigValidationError``,
with AML's message lines. ``effective()`` resolves the defaults Azure's service used to apply into
an immutable ``EffectiveDeploymentConfig``, which is what target drivers consume.
``LocalDeploymentConfig`` takes the same knobs plus ``port``; it differs only in its defaults.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    model_validator,
)

from modelport.config.files import ConfigWarning, type_error_message
from modelport.config.rules import (
    DEPLOY_PREFIX,
    DEPLOYMENT_RULES,
    PORT_RULE,
    PORT_RULE_MESSAGE,
    Rule,
    failed_rules,
)
from modelport.errors import ConfigValidationError, UserErrorException


def _integral_float_to_int(value: Any) -> Any:
    # Azure ML accepted floats for integer knobs (YAML and JSON writers often emit 2.0); modelport
    # accepts the integral ones and refuses 2.5 instead of silently truncating it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, Strict(), BeforeValidator(_integral_float_to_int)]
Number = Annotated[float, Strict(), AllowInfNan(False)]
Flag = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]
TextMap = dict[Text, Text]


@dataclass(frozen=True)
class Knob:
    """Where a parameter lives in ``deploymentconfig.json`` (dotted path); ``None``: not read from files."""

    file_key: str | None


_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping of strings to strings",
}


class EffectiveDeploymentConfig(BaseModel):
    """A fully resolved deployment configuration: every default applied, immutable.

    Field defaults are Azure ML's effective defaults (docs/configuration.md, "The 31 parameters"), so this
    model is also where those defaults are written down once. ``num_replicas`` is ``None`` while
    autoscaling; ``namespace`` ``None`` means the target's default namespace; ``primary_key`` /
    ``secondary_key`` ``None`` mean "generate at deploy time"; ``port`` ``None`` (local only)
    means "a free port chosen at deploy time".
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    compute_type: Literal["kubernetes", "local"]
    autoscale_enabled: bool
    autoscale_min_replicas: int = 1
    autoscale_max_replicas: int = 10
    autoscale_refresh_seconds: int = 1
    autoscale_target_utilization: int = 70
    collect_model_data: bool = False
    auth_enabled: bool = True
    cpu_cores: float = 0.1
    memory_gb: float = 0.5
    enable_app_insights: bool = False
    scoring_timeout_ms: int = 60_000
    replica_max_concurrent_requests: int = 1
    max_request_wait_time: int = 500
    num_replicas: int | None = None
    primary_key: str | None = None
    secondary_key: str | None = None
    tags: dict[str, str] = {}
    properties: dict[str, str] = {}
    description: str | None = None
    gpu_cores: int = 0
    period_seconds: int = 10
    initial_delay_seconds: int = 310
    timeout_seconds: int = 2
    success_threshold: int = 1
    failure_threshold: int = 3
    namespace: str | None = None
    token_auth_enabled: bool = False
    compute_target_name: str | None = None
    cpu_cores_limit: float | None = None
    memory_gb_limit: float | None = None
    blobfuse_enabled: bool = False  # model files are copied into each replica (REFUSED below: True)
    port: int | None = None

    def autoscaler_json(self) -> dict[str, Any]:
        """The ``autoScaler`` section as Azure ML wrote it (service JSON, deploymentconfig.json)."""
        return {
            "autoscaleEnabled": self.autoscale_enabled,
            "minReplicas": self.autoscale_min_replicas,
            "maxReplicas": self.autoscale_max_replicas,
            "refreshPeriodInSeconds": self.autoscale_refresh_seconds,
            "targetUtilization": self.autoscale_target_utilization,
        }


EFFECTIVE_DEFAULTS: Mapping[str, Any] = {
    name: field.default
    for name, field in EffectiveDeploymentConfig.model_fields.items()
    if not field.is_required()
}

_ConfigT = TypeVar("_ConfigT", bound="DeploymentConfig")


class DeploymentConfig(BaseModel):
    """The 31 knobs of ``AksWebservice.deploy_configuration``, as given; base of both compute types.

    Constructing one validates it (types first, then AML's rules) and raises one
    ``ConfigValidationError`` listing every problem. Attributes may be reassigned afterwards, as
    with Azure ML's object; ``validate_configuration()`` checks them again.
    """

    model_config = ConfigDict(extra="forbid")

    COMPUTE_TYPE: ClassVar[Literal["kubernetes", "local"]]
    FILE_COMPUTE_TYPE: ClassVar[str]
    RULES: ClassVar[tuple[Rule, ...]] = DEPLOYMENT_RULES
    # Parameters whose type errors carry AML's own message instead of the generic one.
    TYPE_ERROR_MESSAGES: ClassVar[Mapping[str, str]] = {}
    # Whether an unset autoscale_enabled means autoscaling (AKS) or a fixed replica count (local).
    AUTOSCALE_BY_DEFAULT: ClassVar[bool]
    AUTH_BY_DEFAULT: ClassVar[bool]

    autoscale_enabled: Annotated[Flag | None, Knob("autoScaler.autoscaleEnabled")] = None
    autoscale_min_replicas: Annotated[Integer | None, Knob("autoScaler.minReplicas")] = None
    autoscale_max_replicas: Annotated[Integer | None, Knob("autoScaler.maxReplicas")] = None
    autoscale_refresh_seconds: Annotated[Integer | None, Knob("autoScaler.refreshPeriodInSeconds")] = None
    autoscale_target_utilization: Annotated[Integer | None, Knob("autoScaler.targetUtilization")] = None
    collect_model_data: Annotated[Flag | None, Knob("dataCollection.storageEnabled")] = None
    auth_enabled: Annotated[Flag | None, Knob("authEnabled")] = None
    cpu_cores: Annotated[Number | None, Knob("containerResourceRequirements.cpu")] = None
    memory_gb: Annotated[Number | None, Knob("containerResourceRequirements.memoryInGB")] = None
    enable_app_insights: Annotated[Flag | None, Knob("appInsightsEnabled")] = None
    scoring_timeout_ms: Annotated[Integer | None, Knob("scoringTimeoutMs")] = None
    replica_max_concurrent_requests: Annotated[Integer | None, Knob("maxConcurrentRequestsPerContainer")] = (
        None
    )
    max_request_wait_time: Annotated[Integer | None, Knob("maxQueueWaitMs")] = None
    num_replicas: Annotated[Integer | None, Knob("numReplicas")] = None
    primary_key: Annotated[Text | None, Knob("keys.primaryKey")] = None
    secondary_key: Annotated[Text | None, Knob("keys.secondaryKey")] = None
    tags: Annotated[TextMap | None, Knob(None)] = None
    properties: Annotated[TextMap | None, Knob(None)] = None
    description: Annotated[Text | None, Knob(None)] = None
    gpu_cores: Annotated[Integer | None, Knob("gpuCores")] = None
    period_seconds: Annotated[Integer | None, Knob("livenessProbeRequirements.periodSeconds")] = None
    initial_delay_seconds: Annotated[
        Integer | None, Knob("livenessProbeRequirements.initialDelaySeconds")
    ] = None
    timeout_seconds: Annotated[Integer | None, Knob("livenessProbeRequirements.timeoutSeconds")] = None
    success_threshold: Annotated[Integer | None, Knob("livenessProbeRequirements.successThreshold")] = None
    failure_threshold: Annotated[Integer | None, Knob("livenessProbeRequirements.failureThreshold")] = None
    namespace: Annotated[Text | None, Knob("namespace")] = None
    token_auth_enabled: Annotated[Flag | None, Knob("tokenAuthEnabled")] = None
    compute_target_name: Annotated[Text | None, Knob("computeTargetName")] = None
    cpu_cores_limit: Annotated[Number | None, Knob("containerResourceRequirements.cpuLimit")] = None
    memory_gb_limit: Annotated[Number | None, Knob("containerResourceRequirements.memoryInGBLimit")] = None
    blobfuse_enabled: Annotated[Flag | None, Knob(None)] = None

    @classmethod
    def file_keys(cls) -> dict[str, str]:
        """Map each parameter read from ``deploymentconfig.json`` to its dotted file key."""
        keys = {}
        for name, field in cls.model_fields.items():
            knob = next(item for item in field.metadata if isinstance(item, Knob))
            if knob.file_key is not None:
                keys[name] = knob.file_key
        return keys

    @model_validator(mode="wrap")
    @classmethod
    def _check_everything(
        cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Self:
        # Type errors and rule failures are reported together; a rule that reads a parameter of the
        # wrong type is skipped, since its comparison would be meaningless.
        labels: Mapping[str, str] = (info.context or {}).get("labels", {})
        try:
            config: Self = handler(data)
        except ValidationError as exc:
            type_errors, bad_fields = cls._describe_type_errors(exc, labels)
            given = data if isinstance(data, Mapping) else {}
            rule_errors = failed_rules(cls.RULES, given, EFFECTIVE_DEFAULTS, skip_fields=bad_fields)
            raise ConfigValidationError(
                [DEPLOY_PREFIX + line for line in type_errors + rule_errors]
            ) from None
        errors = failed_rules(cls.RULES, config.given(), EFFECTIVE_DEFAULTS)
        if errors:
            raise ConfigValidationError([DEPLOY_PREFIX + line for line in errors])
        return config

    @classmethod
    def _describe_type_errors(
        cls, exc: ValidationError, labels: Mapping[str, str]
    ) -> tuple[list[str], frozenset[str]]:
        lines = []
        bad_fields = set()
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            bad_fields.add(field)
            if error["type"] == "extra_forbidden":
                lines.append(f"{field} is not a deployment configuration parameter.")
                continue
            if field in cls.TYPE_ERROR_MESSAGES:
                lines.append(cls.TYPE_ERROR_MESSAGES[field])
                continue
            label = labels.get(field, field) + "".join(f"[{part!r}]" for part in error["loc"][1:])
            lines.append(
                type_error_message(label, error["input"], _EXPECTED.get(error["type"], error["msg"]))
            )
        return lines, frozenset(bad_fields)

    def given(self) -> dict[str, Any]:
        """The parameters as given (``None`` where not given), by parameter name."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def validate_configuration(self) -> None:
        """Check the current attribute values again; raise ``ConfigValidationError`` listing every problem."""
        type(self).model_validate(self.given())

    def effective(self) -> EffectiveDeploymentConfig:
        """Validate, then return the fully resolved, immutable configuration with every default applied."""
        self.validate_configuration()
        given = {name: value for name, value in self.given().items() if value is not None}
        autoscale = given.get("autoscale_enabled")
        if autoscale is None:
            autoscale = self.AUTOSCALE_BY_DEFAULT and "num_replicas" not in given
        given["autoscale_enabled"] = autoscale
        if not autoscale:
            given.setdefault("num_replicas", 1)
        # Key auth is the default unless the caller turned token auth on (both on is an error).
        given.setdefault("auth_enabled", self.AUTH_BY_DEFAULT and not given.get("token_auth_enabled", False))
        return EffectiveDeploymentConfig(compute_type=self.COMPUTE_TYPE, **given)

    def to_file_dict(self) -> dict[str, Any]:
        """The ``deploymentconfig.json`` form (camelCase, nested) of the parameters that were given.

        Parameters that Azure ML never read from a file (tags, properties, description,
        blobfuse_enabled) are left out, as they would be ignored on reading.
        """
        document: dict[str, Any] = {"computeType": self.FILE_COMPUTE_TYPE}
        for name, key in self.file_keys().items():
            value = getattr(self, name)
            if value is None:
                continue
            *sections, leaf = key.split(".")
            target = document
            for section in sections:
                target = target.setdefault(section, {})
            target[leaf] = value
        return document

    def print_deploy_configuration(self) -> None:
        """Print the resource summary Azure ML printed (CPU, GPU, memory, replicas), with effective values."""
        config = self.effective()
        replicas = (
            f"autoscale {config.autoscale_min_replicas}-{config.autoscale_max_replicas}"
            if config.autoscale_enabled
            else str(config.num_replicas)
        )
        print(
            f"CPU requirement: {config.cpu_cores}, GPU requirement: {config.gpu_cores}, "
            f"Memory requirement: {config.memory_gb}GB, Number of replica: {replicas}"
        )


class KubernetesDeploymentConfig(DeploymentConfig):
    """Deployment configuration for a Kubernetes target (Azure ML's ``AksServiceDeploymentConfiguration``).

    Defaults as on AKS: key auth on, autoscaling 1..10 replicas unless ``num_replicas`` is given.
    """

    COMPUTE_TYPE = "kubernetes"
    FILE_COMPUTE_TYPE = "aks"
    AUTOSCALE_BY_DEFAULT = True
    AUTH_BY_DEFAULT = True


AksServiceDeploymentConfiguration = KubernetesDeploymentConfig


class LocalDeploymentConfig(DeploymentConfig):
    """Deployment configuration for the local (process-based) target.

    Azure ML's ``LocalWebservice`` took only ``port``; modelport's local target also takes the 31
    knobs, with the same rules, so that one file works on a laptop and on a cluster. Defaults
    differ where ``LocalWebservice`` differed: no auth unless asked for, and a single replica
    (no autoscaling) unless ``autoscale_enabled`` or ``num_replicas`` says otherwise.
    """

    COMPUTE_TYPE = "local"
    FILE_COMPUTE_TYPE = "local"
    RULES = (PORT_RULE, *DEPLOYMENT_RULES)
    TYPE_ERROR_MESSAGES = {"port": PORT_RULE_MESSAGE}
    AUTOSCALE_BY_DEFAULT = False
    AUTH_BY_DEFAULT = False

    port: Annotated[Integer | None, Knob("port")] = None


def kubernetes_deploy_configuration(
    autoscale_enabled: bool | None = None,
    autoscale_min_replicas: int | None = None,
    autoscale_max_replicas: int | None = None,
    autoscale_refresh_seconds: int | None = None,
    autoscale_target_utilization: int | None = None,
    collect_model_data: bool | None = None,
    auth_enabled: bool | None = None,
    cpu_cores: float | None = None,
    memory_gb: float | None = None,
    enable_app_insights: bool | None = None,
    scoring_timeout_ms: int | None = None,
    replica_max_concurrent_requests: int | None = None,
    max_request_wait_time: int | None = None,
    num_replicas: int | None = None,
    primary_key: str | None = None,
    secondary_key: str | None = None,
    tags: dict[str, str] | None = None,
    properties: dict[str, str] | None = None,
    description: str | None = None,
    gpu_cores: int | None = None,
    period_seconds: int | None = None,
    initial_delay_seconds: int | None = None,
    timeout_seconds: int | None = None,
    success_threshold: int | None = None,
    failure_threshold: int | None = None,
    namespace: str | None = None,
    token_auth_enabled: bool | None = None,
    compute_target_name: str | None = None,
    cpu_cores_limit: float | None = None,
    memory_gb_limit: float | None = None,
    blobfuse_enabled: bool | None = None,
) -> KubernetesDeploymentConfig:
    """Create a Kubernetes deployment configuration: ``AksWebservice.deploy_configuration``'s signature.

    Every parameter defaults to ``None`` (= the effective default, see ``effective()``). Raises
    ``ConfigValidationError`` (a ``WebserviceException``) listing every failed rule.
    """
    return KubernetesDeploymentConfig(**locals())


def local_deploy_configuration(port: int | None = None, **knobs: Any) -> LocalDeploymentConfig:
    """Create a local deployment configuration: ``LocalWebservice.deploy_configuration(port=None)``.

    ``knobs`` are any of the 31 keyword parameters of ``kubernetes_deploy_configuration``.
    """
    unknown = sorted(set(knobs) - set(DeploymentConfig.model_fields))
    if unknown:
        raise TypeError(f"deploy_configuration() got an unexpected keyword argument {unknown[0]!r}")
    return LocalDeploymentConfig(port=port, **knobs)


def validate_as(
    config_class: type[_ConfigT], values: Mapping[str, Any], labels: Mapping[str, str]
) -> _ConfigT:
    """Build ``config_class`` from ``values``; type errors name parameters by ``labels`` (e.g. file keys)."""
    return config_class.model_validate(dict(values), context={"labels": labels})


class SettingWithoutEffectWarning(ConfigWarning):
    """A deployment setting accepted for Azure ML compatibility that takes no effect in modelport."""


# The Azure ML settings modelport accepts but does not act on, with the value that would need an
# effect and why it has none: warned about (notebooks and files set them routinely). Every other
# setting takes effect, or is refused (REFUSED, the rules above, the target's check);
# tests/config/test_settings_effect.py keeps these lists honest.
WITHOUT_EFFECT: dict[str, tuple[object, str]] = {
    "collect_model_data": (
        True,
        "model data collection is not available yet: nothing is stored, and an entry script that "
        "imports azureml.monitoring fails. Leave it out (or False) until it is.",
    ),
    "enable_app_insights": (
        True,
        "Application Insights is Azure's service, and its OpenTelemetry replacement is not available "
        "yet: no telemetry is exported. Leave it out (or False); the front end's /metrics serves "
        "Prometheus metrics meanwhile.",
    ),
}
# Settings whose value asks for a behaviour modelport does not have: refused when given so.
REFUSED: dict[str, tuple[object, str]] = {
    "blobfuse_enabled": (
        True,
        "modelport copies the model files into each replica before it starts (what "
        "blobfuse_enabled=False did); mounting them to be read lazily is not available. Fix: leave "
        "blobfuse_enabled out, or set it to False.",
    ),
}


def check_settings_effect(given: Mapping[str, Any], action: str) -> None:
    """Refuse a setting of ``given`` (the settings the caller gave, by name) that asks for what
    modelport cannot do (``UserErrorException``), and warn (``SettingWithoutEffectWarning``) about
    one that has no effect yet; ``action`` (``deploy``, ``update()``) leads the message."""
    for name, (value, reason) in REFUSED.items():
        if given.get(name) == value:
            raise UserErrorException(f"{action}: {name}={value!r} cannot take effect: {reason}")
    for name, (value, reason) in WITHOUT_EFFECT.items():
        if given.get(name) == value:
            warnings.warn(
                f"{action}: {name}={value!r} has no effect: {reason}",
                SettingWithoutEffectWarning,
                stacklevel=3,
            )
