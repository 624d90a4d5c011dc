"""Validates the Kubernetes manifests in README.md offline with kubernetes-validate (its bundled
Kubernetes schemas, strict: unknown fields are errors). Run inside .venv-kserve by
scripts/test_open_inference.py; exits non-zero naming each invalid manifest.

KServe's InferenceService is a custom resource: neither kubernetes-validate nor the kserve Python
package ships its CRD schema, so its predictor (a PodSpec with KServe's own fields on top) is validated
as the Pod it becomes, and its own fields are checked against the v1beta1 names used here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.37.0"
# The manifests the README must keep (the Indexed Job, and the serving ones of the Open Inference section).
EXPECTED_KINDS = {"Job", "Deployment", "Service", "InferenceService"}


def readme_manifests(readme: Path) -> list[dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", readme.read_text(), flags=re.S)
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if doc]


def inference_service_as_pod(manifest: dict) -> dict:
    spec = manifest["spec"]
    if set(spec) - {"predictor"}:
        raise ValueError(f"InferenceService spec has fields other than predictor: {sorted(set(spec) - {'predictor'})}")
    predictor = dict(spec["predictor"])
    # PredictorSpec fields that are KServe's, not the PodSpec's.
    for field in ("minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "containerConcurrency", "timeout"):
        predictor.pop(field, None)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": manifest["metadata"]["name"]}, "spec": predictor}


def main() -> int:
    manifests = readme_manifests(Path(__file__).resolve().parent.parent / "README.md")
    failures = []
    for manifest in manifests:
        name = f"{manifest.get('kind')} {manifest.get('metadata', {}).get('name')}"
        try:
            if manifest.get("apiVersion") == "serving.kserve.io/v1beta1" and manifest.get("kind") == "InferenceService":
                kubernetes_validate.validate(inference_service_as_pod(manifest), KUBERNETES_VERSION, strict=True)
            else:
                kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
            print(f"valid: {name}")
        except Exception as error:  # kubernetes-validate raises several error types; each is a failure here
            failures.append(f"{name}: {error}")
    missing = EXPECTED_KINDS - {m.get("kind") for m in manifests}
    if missing:
        failures.append(f"README.md has no manifest of kind {', '.join(sorted(missing))}")
    for failure in failures:
        print(f"INVALID {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
