"""Prepare rendered Helm charts for `podman kube play`, which plays Deployments, Pods and
ConfigMaps but has no API server: no Services, ServiceAccounts or claims, and of the volume
sources only hostPath, configMap, emptyDir and persistentVolumeClaim (podman 4.3).

Usage:
  kube_play.py pods RENDERED.yaml
      Prints JSON [{"name": deployment, "namespace", "pod": the pod its template makes}].
  kube_play.py coordinator RENDERED.yaml OUT.yaml SEAL_DIR
      Keeps the Deployments and ConfigMaps; the seal directory's claim becomes hostPath SEAL_DIR.
  kube_play.py marbles RENDERED.yaml PATCHES.json OUT.yaml PROJECTIONS_DIR
      Applies each Deployment's JSON Patch (PATCHES.json: {deployment: patch}, the marble-injector's
      answer for its pod) to the pod template with the PyPI package jsonpatch, checks the patched
      pod with kubernetes-validate (strict), then does what the kubelet would for downwardAPI
      volumes: writes each item (metadata.uid: a fresh UUID standing for the pod's; an annotation:
      its value) into PROJECTIONS_DIR/DEPLOYMENT/VOLUME and mounts that directory by hostPath.
      Prints JSON {deployment: {"errors": {version: message}, "projected": {path: text}}}.
"""
import json
import os
import re
import sys
import uuid

import jsonpatch
import yaml

from validate_manifests import schema_errors, versions


def documents(path):
    with open(path) as handle:
        return [document for document in yaml.safe_load_all(handle) if document]


def pod_of(deployment):
    template = deployment["spec"]["template"]
    metadata = dict(template.get("metadata", {}))
    metadata.setdefault("name", deployment["metadata"]["name"])
    metadata.setdefault("namespace", deployment["metadata"].get("namespace", "default"))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def write_yaml(path, objects):
    with open(path, "w") as handle:
        yaml.safe_dump_all(objects, handle, sort_keys=False)


def pods(rendered):
    result = []
    for document in documents(rendered):
        if document.get("kind") == "Deployment":
            result.append(
                {
                    "name": document["metadata"]["name"],
                    "namespace": document["metadata"].get("namespace", "default"),
                    "pod": pod_of(document),
                }
            )
    json.dump(result, sys.stdout)


def coordinator(rendered, out, seal_dir):
    kept = []
    for document in documents(rendered):
        if document.get("kind") not in ("Deployment", "ConfigMap"):
            continue
        if document.get("kind") == "Deployment":
            for volume in document["spec"]["template"]["spec"].get("volumes", []):
                if "persistentVolumeClaim" in volume:
                    del volume["persistentVolumeClaim"]
                    volume["hostPath"] = {"path": seal_dir, "type": "Directory"}
        kept.append(document)
    write_yaml(out, kept)


FIELD = re.compile(r"^metadata\.annotations\['([^']+)'\]$")


def marbles(rendered, patches_path, out, projections):
    with open(patches_path) as handle:
        patches = json.load(handle)
    kubernetes_versions = versions()
    kept, report = [], {}
    for document in documents(rendered):
        if document.get("kind") != "Deployment":
            continue
        name = document["metadata"]["name"]
        pod = jsonpatch.JsonPatch(patches.get(name, [])).apply(pod_of(document))
        errors = schema_errors(pod, kubernetes_versions)
        projected = {}
        pod_uid = str(uuid.uuid4())
        for volume in pod["spec"].get("volumes", []):
            if "downwardAPI" not in volume:
                continue
            directory = os.path.join(projections, name, volume["name"])
            os.makedirs(directory, exist_ok=True)
            for item in volume.pop("downwardAPI")["items"]:
                field = item["fieldRef"]["fieldPath"]
                annotation = FIELD.match(field)
                if field == "metadata.uid":
                    text = pod_uid
                elif annotation:
                    text = pod["metadata"].get("annotations", {})[annotation.group(1)]
                else:
                    raise SystemExit(f"{name}: no stand-in for the downward API field {field}")
                path = os.path.join(directory, item["path"])
                with open(path, "w") as handle:
                    handle.write(text)
                os.chmod(path, 0o644)
                projected[path] = text
            os.chmod(directory, 0o755)
            volume["hostPath"] = {"path": directory, "type": "Directory"}
        document["spec"]["template"]["metadata"] = {
            key: value for key, value in pod["metadata"].items() if key not in ("name", "namespace")
        }
        document["spec"]["template"]["spec"] = pod["spec"]
        kept.append(document)
        report[name] = {"errors": errors, "projected": projected}
    write_yaml(out, kept)
    json.dump(report, sys.stdout)


def main():
    command = sys.argv[1]
    if command == "pods":
        pods(sys.argv[2])
    elif command == "coordinator":
        coordinator(*sys.argv[2:5])
    elif command == "marbles":
        marbles(*sys.argv[2:6])
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
