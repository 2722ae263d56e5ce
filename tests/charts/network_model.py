"""A small model of Kubernetes NetworkPolicy semantics, to ask of rendered
policies which connections they allow.

A pod is isolated in a direction when some policy of its namespace selects it
with that policy type; a connection is allowed when the source's egress and
the destination's ingress both allow it (each direction either not isolated,
or allowed by some rule of a selecting policy).
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    """A pod the model knows: its name for reports, namespace, labels, ports."""

    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[tuple[str, int], ...] = ()
    namespace_labels: tuple[tuple[str, str], ...] = field(default=())

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def port_number(self, port: int | str) -> int | None:
        if isinstance(port, int):
            return port
        return dict(self.ports).get(port)


def pod(
    name: str,
    namespace: str,
    labels: dict[str, str],
    ports: dict[str, int] | None = None,
) -> Pod:
    """A :class:`Pod` whose namespace carries its standard name label."""
    return Pod(
        name,
        namespace,
        tuple(sorted(labels.items())),
        tuple(sorted((ports or {}).items())),
        (("kubernetes.io/metadata.name", namespace),),
    )


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    expressions = selector.get("matchExpressions") or []
    if expressions:
        raise NotImplementedError("matchExpressions are not modelled")
    return (selector.get("matchLabels") or {}).items() <= labels.items()


def _peer_matches(peer: dict[str, Any], policy_namespace: str, other: Pod) -> bool:
    if "ipBlock" in peer:
        return False  # pods are not addressed by CIDR in this model
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        in_namespace = other.namespace == policy_namespace
    else:
        in_namespace = _selects(namespace_selector, dict(other.namespace_labels))
    return in_namespace and _selects(peer.get("podSelector"), other.label_map)


def _rule_allows(
    rule: dict[str, Any],
    peers_key: str,
    policy_namespace: str,
    other: Pod,
    target: Pod,
    port: int,
) -> bool:
    peers = rule.get(peers_key)
    if peers is not None and not any(
        _peer_matches(p, policy_namespace, other) for p in peers
    ):
        return False
    ports = rule.get("ports")
    if ports is None:
        return True
    return any(target.port_number(p["port"]) == port for p in ports)


class NetworkModel:
    """The policies of a set of namespaces, asked about pod-to-pod connections."""

    def __init__(self, policies: list[dict[str, Any]]) -> None:
        self.policies = policies

    def _selecting(self, target: Pod, policy_type: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.policies
            if p["metadata"]["namespace"] == target.namespace
            and policy_type in p["spec"].get("policyTypes", ["Ingress"])
            and _selects(p["spec"]["podSelector"], target.label_map)
        ]

    def _direction_allows(
        self, owner: Pod, other: Pod, destination: Pod, port: int, direction: str
    ) -> bool:
        policy_type, rules_key, peers_key = {
            "ingress": ("Ingress", "ingress", "from"),
            "egress": ("Egress", "egress", "to"),
        }[direction]
        selecting = self._selecting(owner, policy_type)
        if not selecting:
            return True
        return any(
            _rule_allows(
                rule,
                peers_key,
                policy["metadata"]["namespace"],
                other,
                destination,
                port,
            )
            for policy in selecting
            for rule in policy["spec"].get(rules_key) or []
        )

    def allows(self, source: Pod, destination: Pod, port: int) -> bool:
        """Whether ``source`` may open a connection to ``destination:port``."""
        return self._direction_allows(
            source, destination, destination, port, "egress"
        ) and self._direction_allows(destination, source, destination, port, "ingress")
