"""Apply the marble-injector's JSON Patches with the PyPI package jsonpatch and check the
patched pods against Kubernetes' own schemas (kubernetes-validate, strict: unknown fields fail).

Usage: apply_patch.py CASES.json
CASES.json: a list of {"name", "pod": {...}, "patch": [...] or null}.
Prints a list of {"name", "pod": patched pod, "errors": {version: message}} for the Kubernetes
versions 1.30 and the newest one kubernetes-validate knows.
"""
import json
import sys

import jsonpatch

from validate_manifests import schema_errors, versions


def main() -> None:
    with open(sys.argv[1]) as handle:
        cases = json.load(handle)
    kubernetes_versions = versions()
    results = []
    for case in cases:
        pod = case["pod"]
        if case.get("patch") is not None:
            pod = jsonpatch.JsonPatch(case["patch"]).apply(pod)
        errors = schema_errors(pod, kubernetes_versions)
        results.append({"name": case["name"], "pod": pod, "errors": errors, "versions": kubernetes_versions})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
