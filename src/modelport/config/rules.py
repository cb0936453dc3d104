"""Azure ML v1's validation rules for deployment settings, as one table that both checks and explains.

Each rule is a message body (AML's wording, without its prefix) plus the parameters it reads and a
predicate that says whether it failed. Deploy-time validation prefixes the bodies with
``Invalid configuration, ``; an ``update`` will run the same table with ``Error, `` and with the
current service's values as the fallback, which is why the predicates see a ``RuleInput`` rather
than bare attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelport.names import NAMESPACE

DEPLOY_PREFIX = "Invalid configuration, "

# The Azure service (not the SDK) refused longer scoring timeouts; modelport enforces it client-side.
MAX_SCORING_TIMEOUT_MS = 300_000

PORT_RULE_MESSAGE = "port must be an integer in range [1, 65535]"

AUTOSCALE_KNOBS = (
    "autoscale_min_replicas",
    "autoscale_max_replicas",
    "autoscale_refresh_seconds",
    "autoscale_target_utilization",
)


class RuleInput:
    """The values a rule looks at: what the caller gave, and a fallback for what it left out.

    ``input[name]`` is the given value (``None`` when not given), as AML's checks saw it;
    ``input.resolved(name)`` falls back to the effective default at deploy time (or to the current
    service's value at update time).
    """

    def __init__(self, given: Mapping[str, Any], fallback: Mapping[str, Any]) -> None:
        self._given = given
        self._fallback = fallback

    def __getitem__(self, name: str) -> Any:
        return self._given.get(name)

    def resolved(self, name: str) -> Any:
        value = self._given.get(name)
        return self._fallback.get(name) if value is None else value


@dataclass(frozen=True)
class Rule:
    """One validation rule: its message body, the parameters it reads, and when it fails."""

    message: str
    fields: tuple[str, ...]
    failed: Callable[[RuleInput], bool]


def _greater_than_zero(field: str, *, only_when_autoscaling: bool = False) -> Rule:
    def failed(values: RuleInput) -> bool:
        if only_when_autoscaling and not values["autoscale_enabled"]:
            return False
        return values[field] is not None and values[field] <= 0

    fields = (field, "autoscale_enabled") if only_when_autoscaling else (field,)
    return Rule(f"{field} must be greater than zero.", fields, failed)


def _limit_not_below_request(limit: str, request: str) -> Rule:
    # AML compared only when both were given; modelport also compares a lone limit with the
    # effective request, which the cluster would otherwise refuse at rollout (request > limit).
    def failed(values: RuleInput) -> bool:
        if values[limit] is None and values[request] is None:
            return False
        effective_limit, effective_request = values.resolved(limit), values.resolved(request)
        return (
            effective_limit is not None
            and effective_request is not None
            and effective_limit < effective_request
        )

    return Rule(f"{limit} must be greater than or equal to {request}.", (limit, request), failed)


def _needs_autoscale_enabled(field: str) -> Rule:
    # AML's exact logic: autoscale_enabled None counts as "not enabled", and any truthy knob fails.
    return Rule(
        f"{field} provided without enabling autoscaling.",
        (field, "autoscale_enabled"),
        lambda values: not values["autoscale_enabled"] and bool(values[field]),
    )


def _min_above_max(values: RuleInput) -> bool:
    low, high = values["autoscale_min_replicas"], values["autoscale_max_replicas"]
    return bool(values["autoscale_enabled"]) and bool(low) and bool(high) and low > high


def _bad_namespace(values: RuleInput) -> bool:
    namespace = values["namespace"]
    return bool(namespace) and NAMESPACE.match(namespace) is None


def _port_out_of_range(values: RuleInput) -> bool:
    port = values["port"]
    return port is not None and not 1 <= port <= 65535


# In AML's order (AksServiceDeploymentConfiguration.validate_configuration), so that the combined
# message reads exactly as it did.
DEPLOYMENT_RULES: tuple[Rule, ...] = (
    _greater_than_zero("cpu_cores"),
    _limit_not_below_request("cpu_cores_limit", "cpu_cores"),
    _greater_than_zero("memory_gb"),
    _limit_not_below_request("memory_gb_limit", "memory_gb"),
    Rule(
        "gpu_cores must be greater than or equal to zero.",
        ("gpu_cores",),
        lambda values: values["gpu_cores"] is not None and values["gpu_cores"] < 0,
    ),
    *(
        _greater_than_zero(field)
        for field in (
            "period_seconds",
            "initial_delay_seconds",
            "timeout_seconds",
            "success_threshold",
            "failure_threshold",
        )
    ),
    Rule(
        f"namespace must be a valid Kubernetes namespace. Regex for validation is {NAMESPACE.pattern}",
        ("namespace",),
        _bad_namespace,
    ),
    _greater_than_zero("scoring_timeout_ms"),
    Rule(
        f"scoring_timeout_ms must be less than or equal to {MAX_SCORING_TIMEOUT_MS}.",
        ("scoring_timeout_ms",),
        lambda values: (
            values["scoring_timeout_ms"] is not None and values["scoring_timeout_ms"] > MAX_SCORING_TIMEOUT_MS
        ),
    ),
    _greater_than_zero("replica_max_concurrent_requests"),
    _greater_than_zero("max_request_wait_time"),
    _greater_than_zero("num_replicas"),
    Rule(
        "autoscale enabled and num_replicas provided.",
        ("autoscale_enabled", "num_replicas"),
        lambda values: bool(values["autoscale_enabled"]) and bool(values["num_replicas"]),
    ),
    _greater_than_zero("autoscale_min_replicas", only_when_autoscaling=True),
    _greater_than_zero("autoscale_max_replicas", only_when_autoscaling=True),
    Rule(
        "autoscale_min_replicas cannot be greater than autoscale_max_replicas.",
        ("autoscale_enabled", "autoscale_min_replicas", "autoscale_max_replicas"),
        _min_above_max,
    ),
    _greater_than_zero("autoscale_refresh_seconds", only_when_autoscaling=True),
    _greater_than_zero("autoscale_target_utilization", only_when_autoscaling=True),
    Rule(
        "autoscale disabled but num_replicas not provided.",
        ("autoscale_enabled", "num_replicas"),
        lambda values: values["autoscale_enabled"] is False and not values["num_replicas"],
    ),
    *(_needs_autoscale_enabled(field) for field in AUTOSCALE_KNOBS),
    Rule(
        "auth_enabled and token_auth_enabled cannot both be true.",
        ("auth_enabled", "token_auth_enabled"),
        lambda values: bool(values["auth_enabled"]) and bool(values["token_auth_enabled"]),
    ),
)

PORT_RULE = Rule(PORT_RULE_MESSAGE, ("port",), _port_out_of_range)


def failed_rules(
    rules: Iterable[Rule],
    given: Mapping[str, Any],
    fallback: Mapping[str, Any],
    *,
    skip_fields: frozenset[str] = frozenset(),
) -> list[str]:
    """Return the message body of every rule that fails, in table order.

    Rules that read a parameter in ``skip_fields`` (one that already failed its type check) are
    not evaluated: their comparisons would be meaningless.
    """
    values = RuleInput(given, fallback)
    return [rule.message for rule in rules if skip_fields.isdisjoint(rule.fields) and rule.failed(values)]
