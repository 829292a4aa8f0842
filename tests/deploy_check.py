"""Helper of crates/detailing/tests/deploy.rs: reads YAML for it, and checks Kubernetes objects
against Kubernetes' own schemas. The Rust test makes the judgements about our files; this only
parses and runs the schema tools (installed from tests/requirements.txt).

  deploy_check.py yaml FILE
      prints the file's YAML documents as one JSON list.
  deploy_check.py k8s FILE...
      prints {"documents": [{"file", "index", "document", "schema"}], "errors": [...]}, where
      "schema" says whether kubernetes-validate knew the kind ("checked") or not ("unknown kind",
      e.g. SpinApp, a custom resource). Each known object is checked strictly (no unknown field)
      against the oldest and the newest Kubernetes release in KUBERNETES_VERSIONS. A SpinApp's
      fields that the operator copies into its pods are checked as that Pod (see pod_of_spinapp).
"""

import json
import sys

import yaml
from kubernetes_validate import utils as kv

# The oldest release we promise the manifests for, and the newest the pinned package knows.
KUBERNETES_VERSIONS = ["1.30", kv.major_minor(kv.latest_version())]


def documents(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def describe(doc):
    if not isinstance(doc, dict):
        return "not a mapping"
    name = (doc.get("metadata") or {}).get("name", "?")
    return "%s/%s" % (doc.get("kind", "?"), name)


def pod_of_spinapp(doc):
    """The Pod a SpinApp's fields end up in: spin-operator turns each of `variables` into an env
    var SPIN_VARIABLE_<NAME> (value or valueFrom as given), each of `checks` into a probe with
    an httpGet on the app's port (80), and passes resources, volumes, volumeMounts,
    imagePullSecrets and serviceAccountName through. Kubernetes' schema then checks them."""
    spec = doc.get("spec") or {}
    container = {"name": "spin-app", "image": spec.get("image", "")}
    env = []
    for variable in spec.get("variables") or []:
        var = dict(variable) if isinstance(variable, dict) else {"name": variable}
        var["name"] = "SPIN_VARIABLE_" + str(var.get("name", "")).upper()
        env.append(var)
    if env:
        container["env"] = env
    for check, probe in (spec.get("checks") or {}).items():
        probe = dict(probe) if isinstance(probe, dict) else {"httpGet": probe}
        if isinstance(probe.get("httpGet"), dict):
            probe["httpGet"] = dict(probe["httpGet"], port=80)
        container[check + "Probe"] = probe
    for field in ("resources", "volumeMounts"):
        if field in spec:
            container[field] = spec[field]
    pod_spec = {"containers": [container]}
    for field in ("volumes", "imagePullSecrets", "serviceAccountName"):
        if field in spec:
            pod_spec[field] = spec[field]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": (doc.get("metadata") or {}).get("name", "spinapp")},
        "spec": pod_spec,
    }


def schema_errors(doc, where):
    """Kubernetes' schema errors of `doc`, or None when no schema knows its kind."""
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kv.validate(doc, version, strict=True)
        except kv.SchemaNotFoundError:
            return None
        except kv.ValidationError as e:
            field = ".".join(str(p) for p in e.path) or "(top)"
            errors.append("%s: Kubernetes %s: %s: %s" % (where, version, field, e.message))
    return errors


def check_kubernetes(paths):
    out = {"documents": [], "errors": []}
    for path in paths:
        try:
            docs = documents(path)
        except yaml.YAMLError as e:
            out["errors"].append("%s: not YAML: %s" % (path, e))
            continue
        for index, doc in enumerate(docs):
            where = "%s#%d %s" % (path, index, describe(doc))
            schema = "checked"
            if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
                out["errors"].append("%s: needs apiVersion and kind" % where)
                schema = "none"
            else:
                errors = schema_errors(doc, where)
                if errors is None:
                    schema = "unknown kind"
                    errors = []
                if doc.get("kind") == "SpinApp":
                    errors += schema_errors(pod_of_spinapp(doc), where + " as its Pod") or []
                out["errors"] += errors
            out["documents"].append(
                {"file": path, "index": index, "document": doc, "schema": schema}
            )
    return out


def main(argv):
    if len(argv) == 3 and argv[1] == "yaml":
        print(json.dumps(documents(argv[2])))
    elif len(argv) >= 3 and argv[1] == "k8s":
        print(json.dumps(check_kubernetes(argv[2:])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
