#!/usr/bin/env python3
"""Check the deployment files: the kustomize overlays under k8s/ and the Dockerfiles.

For every directory k8s/overlays/NAME, the checker renders it with
`kubectl kustomize` and then:

- validates each rendered object offline against the Kubernetes API schemas
  bundled with the kubernetes-validate package, in strict mode, for each
  version in KUBERNETES_VERSIONS;
- checks every container and init container of every workload for
  runAsNonRoot, readOnlyRootFilesystem, allowPrivilegeEscalation: false,
  dropped capabilities, the RuntimeDefault seccomp profile, CPU and memory
  requests and limits, read-only Secret mounts, and the pod for
  automountServiceAccountToken: false;
- for the sidecar overlay, checks that jwed runs as a native sidecar (an
  init container with restartPolicy: Always) with gRPC startup, readiness
  and liveness probes.

It renders k8s/istio the same way. Objects of an Istio API group
(*.istio.io) must be listed in ISTIO_SCHEMAS and get hand-written field
checks, because kubernetes-validate bundles no Istio CRDs. Any other object
there is validated like the overlays' objects.

It also parses the Dockerfiles with the dockerfile package and checks that
their final stage runs as a numeric non-root user, and for the jwed image,
that the entry point is the binary in exec form rather than a shell.

Usage: python3 tests/deploy/check.py [--repo DIR] [--kubectl PATH]

It needs kubectl on PATH (or --kubectl, or $KUBECTL) and the PyPI packages
kubernetes-validate and dockerfile. It exits 1 and names each failed check,
or prints a one-line summary and exits 0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import dockerfile
import kubernetes_validate
import yaml

# Native sidecars (restartPolicy in init containers) are enabled by default
# from Kubernetes 1.29. The second version is a recent one that the pinned
# kubernetes-validate release bundles.
KUBERNETES_VERSIONS = ("1.29.0", "1.34.0")

# Kinds whose objects carry a pod template, and the path to its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

# Overlays that must run jwed as a native sidecar with gRPC probes.
SIDECAR_OVERLAYS = ("sidecar",)

SHELLS = {"sh", "bash", "ash", "dash", "zsh", "busybox"}

# The (apiVersion, kind) pairs of Istio objects that k8s/istio may contain.
# kubernetes-validate bundles no Istio CRD schemas, so
# check_authorization_policy checks their fields instead.
ISTIO_GROUP_SUFFIX = ".istio.io"
ISTIO_SCHEMAS: set[tuple[str, str]] = {("security.istio.io/v1", "AuthorizationPolicy")}


@dataclass
class Results:
    """Outcome of every check, in the order they ran."""

    passed: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, condition: bool, failure: str) -> bool:
        """Record one check; `failure` is printed when `condition` is false."""
        if condition:
            self.passed += 1
        else:
            self.failures.append(failure)
        return condition


def render_overlay(kubectl: str, overlay: Path) -> str:
    """Return the YAML that `kubectl kustomize` renders for `overlay`."""
    completed = subprocess.run(
        [kubectl, "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed: {completed.stderr.strip()}")
    return completed.stdout


def value_at(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    """Return the value at `path` in nested mappings, or None where a key is missing."""
    value: Any = document
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def containers_of(pod_spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (kind, container) for each init, regular and ephemeral container."""
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in pod_spec.get(kind) or []:
            yield kind, container


def check_container(results: Results, where: str, pod_spec: dict[str, Any], container: dict[str, Any]) -> None:
    """Check one container's security context, resources and Secret mounts."""
    context = container.get("securityContext") or {}
    pod_context = pod_spec.get("securityContext") or {}

    run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    results.check(run_as_non_root is True, f"{where}: runAsNonRoot is not true")
    run_as_user = context.get("runAsUser", pod_context.get("runAsUser"))
    results.check(run_as_user != 0, f"{where}: runAsUser is 0 (root)")
    results.check(
        context.get("readOnlyRootFilesystem") is True,
        f"{where}: securityContext.readOnlyRootFilesystem is not true",
    )
    results.check(
        context.get("allowPrivilegeEscalation") is False,
        f"{where}: securityContext.allowPrivilegeEscalation is not false",
    )
    results.check(context.get("privileged") is not True, f"{where}: securityContext.privileged is true")

    capabilities = context.get("capabilities") or {}
    dropped = [str(name).upper() for name in capabilities.get("drop") or []]
    results.check("ALL" in dropped, f"{where}: securityContext.capabilities.drop does not contain ALL")
    results.check(
        not capabilities.get("add"),
        f"{where}: securityContext.capabilities.add is not empty: {capabilities.get('add')}",
    )

    seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
    results.check(
        seccomp.get("type") == "RuntimeDefault",
        f"{where}: seccompProfile.type is {seccomp.get('type')!r}, expected 'RuntimeDefault' on the container or the pod",
    )

    resources = container.get("resources") or {}
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            value = (resources.get(section) or {}).get(resource)
            results.check(value is not None, f"{where}: resources.{section}.{resource} is missing")

    secret_volumes = {
        volume["name"] for volume in pod_spec.get("volumes") or [] if "secret" in volume
    }
    for mount in container.get("volumeMounts") or []:
        if mount.get("name") in secret_volumes:
            results.check(
                mount.get("readOnly") is True,
                f"{where}: Secret volume {mount['name']!r} is mounted without readOnly: true",
            )


def check_native_sidecar(results: Results, where: str, pod_spec: dict[str, Any]) -> None:
    """Check that jwed is an init container with restartPolicy Always and gRPC probes."""
    jwed = [
        container
        for container in pod_spec.get("initContainers") or []
        if "jwed" in container.get("name", "") and "example" not in container.get("image", "")
    ]
    if not results.check(bool(jwed), f"{where}: no init container named jwed (native sidecar) found"):
        return

    for container in jwed:
        name = f"{where} init container {container['name']!r}"
        results.check(
            container.get("restartPolicy") == "Always",
            f"{name}: restartPolicy is {container.get('restartPolicy')!r}, expected 'Always' for a native sidecar",
        )
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            grpc = (container.get(probe) or {}).get("grpc")
            if results.check(isinstance(grpc, dict), f"{name}: {probe} is missing or is not a grpc probe"):
                results.check(
                    isinstance(grpc.get("port"), int),
                    f"{name}: {probe}.grpc.port is {grpc.get('port')!r}, expected a port number",
                )


def validate_core_object(results: Results, where: str, document: dict[str, Any]) -> None:
    """Validate one object against the Kubernetes schemas of each version in KUBERNETES_VERSIONS."""
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(document, version, strict=True)
            results.passed += 1
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            results.check(False, f"{where}: invalid for Kubernetes {version} at {path or 'the top level'}: {error.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as error:
            results.check(False, f"{where}: no usable schema for Kubernetes {version}: {error}")


def check_authorization_policy(results: Results, where: str, document: dict[str, Any]) -> None:
    """Check an Istio AuthorizationPolicy that delegates to an external authorizer."""
    name = value_at(document, ("metadata", "name"))
    results.check(isinstance(name, str) and bool(name), f"{where}: metadata.name is missing")
    spec = document.get("spec")
    if not results.check(isinstance(spec, dict), f"{where}: spec is missing or is not a mapping"):
        return
    results.check(
        spec.get("action") == "CUSTOM",
        f"{where}: spec.action is {spec.get('action')!r}, expected 'CUSTOM' so that jwed decides",
    )
    provider = value_at(spec, ("provider", "name"))
    results.check(
        isinstance(provider, str) and bool(provider.strip()),
        f"{where}: spec.provider.name is {provider!r}, expected the name of a meshConfig.extensionProviders entry",
    )
    rules = spec.get("rules")
    if results.check(
        isinstance(rules, list) and bool(rules),
        f"{where}: spec.rules is {rules!r}, expected a non-empty list (without rules a CUSTOM policy matches nothing)",
    ):
        for index, rule in enumerate(rules):
            results.check(isinstance(rule, dict), f"{where}: spec.rules[{index}] is {rule!r}, expected a mapping")
    selector = spec.get("selector")
    if selector is not None:
        labels = selector.get("matchLabels") if isinstance(selector, dict) else None
        results.check(
            isinstance(labels, dict) and bool(labels),
            f"{where}: spec.selector has no matchLabels, so it would select every workload in the namespace",
        )


def check_istio(results: Results, kubectl: str, directory: Path) -> None:
    """Render k8s/istio and check each object: Istio objects by ISTIO_SCHEMAS, others by the Kubernetes schemas."""
    label = "k8s/istio"
    try:
        rendered = render_overlay(kubectl, directory)
    except (OSError, RuntimeError) as error:
        results.check(False, f"{label}: {error}")
        return
    results.passed += 1

    documents = [document for document in yaml.safe_load_all(rendered) if document]
    policies = 0
    for document in documents:
        api_version = str(document.get("apiVersion", "?"))
        kind = str(document.get("kind", "?"))
        where = f"{label} {kind}/{value_at(document, ('metadata', 'name')) or '?'}"
        group = api_version.rpartition("/")[0]
        if not group.endswith(ISTIO_GROUP_SUFFIX):
            validate_core_object(results, where, document)
            continue
        if not results.check(
            (api_version, kind) in ISTIO_SCHEMAS,
            f"{where}: {api_version} {kind} has no schema in ISTIO_SCHEMAS, expected one of {sorted(ISTIO_SCHEMAS)}",
        ):
            continue
        if kind == "AuthorizationPolicy":
            policies += 1
            check_authorization_policy(results, where, document)
    results.check(policies > 0, f"{label}: rendered no AuthorizationPolicy")


def check_overlay(results: Results, kubectl: str, overlay: Path) -> None:
    """Render one overlay, validate its objects and check its workloads."""
    label = f"k8s/overlays/{overlay.name}"
    try:
        rendered = render_overlay(kubectl, overlay)
    except (OSError, RuntimeError) as error:
        results.check(False, f"{label}: {error}")
        return
    results.passed += 1

    documents = [document for document in yaml.safe_load_all(rendered) if document]
    results.check(bool(documents), f"{label}: kubectl kustomize rendered no objects")

    workloads = 0
    for document in documents:
        kind = document.get("kind", "?")
        name = value_at(document, ("metadata", "name")) or "?"
        where = f"{label} {kind}/{name}"

        validate_core_object(results, where, document)

        path = POD_SPEC_PATHS.get(kind)
        if path is None:
            continue
        pod_spec = value_at(document, path)
        if not results.check(isinstance(pod_spec, dict), f"{where}: pod spec missing at {'.'.join(path)}"):
            continue
        workloads += 1

        results.check(
            pod_spec.get("automountServiceAccountToken") is False,
            f"{where}: pod automountServiceAccountToken is not false",
        )
        for container_kind, container in containers_of(pod_spec):
            check_container(results, f"{where} {container_kind} {container.get('name', '?')!r}", pod_spec, container)
        if overlay.name in SIDECAR_OVERLAYS:
            check_native_sidecar(results, where, pod_spec)

    results.check(workloads > 0, f"{label}: rendered no workload with a pod spec")


def final_stage(commands: tuple[Any, ...]) -> list[Any]:
    """Return the instructions after the last FROM."""
    starts = [index for index, command in enumerate(commands) if command.cmd.upper() == "FROM"]
    return list(commands[starts[-1] :]) if starts else []


def check_dockerfile(results: Results, path: Path, root: Path, jwed_image: bool) -> None:
    """Check a Dockerfile's final stage: numeric non-root USER, exec-form entry point."""
    label = str(path.relative_to(root))
    try:
        commands = dockerfile.parse_file(str(path))
    except (dockerfile.GoIOError, dockerfile.GoParseError) as error:
        results.check(False, f"{label}: cannot be parsed: {error}")
        return
    stage = final_stage(commands)
    if not results.check(bool(stage), f"{label}: no FROM instruction"):
        return

    users = [command for command in stage if command.cmd.upper() == "USER"]
    if results.check(bool(users), f"{label}: the final stage has no USER instruction, so it runs as root"):
        user = users[-1].value[0]
        uid, _, gid = user.partition(":")
        results.check(
            uid.isdigit() and (not gid or gid.isdigit()),
            f"{label}: USER {user!r} is not numeric, so Kubernetes cannot verify runAsNonRoot",
        )
        results.check(not uid.isdigit() or int(uid) != 0, f"{label}: USER {user!r} is root")

    if not jwed_image:
        return
    entrypoints = [command for command in stage if command.cmd.upper() == "ENTRYPOINT"]
    if not results.check(bool(entrypoints), f"{label}: the final stage has no ENTRYPOINT"):
        return
    entrypoint = entrypoints[-1]
    results.check(
        entrypoint.json,
        f"{label}: ENTRYPOINT {entrypoint.original!r} is in shell form; use the exec form [\"/usr/local/bin/jwed\"]",
    )
    program = Path(entrypoint.value[0]).name if entrypoint.value else ""
    results.check(
        program not in SHELLS,
        f"{label}: ENTRYPOINT runs the shell {program!r}; the image must run jwed directly",
    )
    results.check(
        program == "jwed",
        f"{label}: ENTRYPOINT runs {entrypoint.value[0] if entrypoint.value else ''!r}, expected the jwed binary",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Check the kustomize overlays and Dockerfiles of jwed.")
    parser.add_argument(
        "--repo",
        type=Path,
        default=Path(__file__).resolve().parents[2],
        help="repository root (default: two levels above this script)",
    )
    parser.add_argument(
        "--kubectl",
        default=os.environ.get("KUBECTL", "kubectl"),
        help="kubectl program that renders the overlays (default: $KUBECTL or kubectl)",
    )
    args = parser.parse_args()
    root: Path = args.repo.resolve()

    results = Results()
    overlays = sorted(path.parent for path in (root / "k8s" / "overlays").glob("*/kustomization.yaml"))
    results.check(bool(overlays), f"no overlay found under {root / 'k8s' / 'overlays'}")
    for name in SIDECAR_OVERLAYS:
        results.check(
            any(overlay.name == name for overlay in overlays),
            f"k8s/overlays/{name} is missing",
        )
    for overlay in overlays:
        check_overlay(results, args.kubectl, overlay)

    check_istio(results, args.kubectl, root / "k8s" / "istio")

    check_dockerfile(results, root / "Dockerfile", root, jwed_image=True)
    example_app = root / "k8s" / "example-app" / "Dockerfile"
    if example_app.exists():
        check_dockerfile(results, example_app, root, jwed_image=False)

    for failure in results.failures:
        print(f"FAIL {failure}", file=sys.stderr)
    print(f"deploy checks: {results.passed} passed, {len(results.failures)} failed")
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
