"""Check rendered Kubernetes YAML against Kubernetes' own schemas (PyPI kubernetes-validate, strict:
an unknown field fails), for Kubernetes 1.30 and the newest version the package knows.

Usage: validate_manifests.py FILE.yaml
Prints JSON: {"versions": [...], "objects": [{"kind", "name", "errors": {version: message}}],
"skipped": [{"kind", "apiVersion", "name"}]} — custom resources (cert-manager, the Prometheus
operator) have no schema in the package and are listed as skipped.
"""
import json
import sys

import kubernetes_validate.utils as validation
import yaml

CUSTOM_GROUPS = ("cert-manager.io/", "monitoring.coreos.com/")


def versions():
    """Kubernetes 1.30 and the newest version kubernetes-validate knows."""
    return ["1.30.0", validation.latest_version()]


def schema_errors(document, kubernetes_versions):
    """{version: first line of the error} for each version whose schema (strict) refuses `document`."""
    errors = {}
    for version in kubernetes_versions:
        try:
            validation.validate(document, version, strict=True)
        except Exception as error:  # ValidationError, or a schema that cannot be found
            errors[version] = str(error).splitlines()[0]
    return errors


def main() -> None:
    with open(sys.argv[1]) as handle:
        documents = [document for document in yaml.safe_load_all(handle) if document]
    kubernetes_versions = versions()
    objects, skipped = [], []
    for document in documents:
        kind = document.get("kind", "")
        name = document.get("metadata", {}).get("name", "")
        if document.get("apiVersion", "").startswith(CUSTOM_GROUPS):
            skipped.append({"kind": kind, "apiVersion": document["apiVersion"], "name": name})
            continue
        errors = schema_errors(document, kubernetes_versions)
        objects.append({"kind": kind, "name": name, "errors": errors, "object": document})
    json.dump({"versions": kubernetes_versions, "objects": objects, "skipped": skipped}, sys.stdout)


if __name__ == "__main__":
    main()
