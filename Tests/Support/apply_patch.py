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
import kubernetes_validate.utils as validation


def main() -> None:
    with open(sys.argv[1]) as handle:
        cases = json.load(handle)
    versions = ["1.30.0", validation.latest_version()]
    results = []
    for case in cases:
        pod = case["pod"]
        if case.get("patch") is not None:
            pod = jsonpatch.JsonPatch(case["patch"]).apply(pod)
        errors = {}
        for version in versions:
            try:
                validation.validate(pod, version, strict=True)
            except Exception as error:  # ValidationError, or a schema that cannot be found
                errors[version] = str(error).splitlines()[0]
        results.append({"name": case["name"], "pod": pod, "errors": errors, "versions": versions})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
