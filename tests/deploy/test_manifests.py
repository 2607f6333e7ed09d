"""Invariants of every Kubernetes manifest in deploy/k8s, as written and as rendered.

Each overlay is rendered with the real kustomize (built by scripts/setup.d/40-kustomize.sh),
so the checks see exactly what `kubectl apply` would get: generated ConfigMap names, image
pins, HSM components. The raw files are checked too, so a mistake in a component that no
overlay uses is still caught.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUSTOMIZE_VERSION = "5.7.1"

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "FlinkDeployment"}
SECRET_ENV = re.compile(r"(PIN|PASSWORD|PASSWD|SECRET|API_?KEY|PRIVATE|CREDENTIAL)|TOKEN$", re.I)
SECRET_CONFIG_KEY = re.compile(r"^\s*(pin|password|sasl_password|s3_secret_key|secret|api_key)\s*=", re.I | re.M)


# -- loading -------------------------------------------------------------------------------------


def _kustomize() -> str:
    tools = os.environ.get("AUDITVEIL_TOOLS", "/opt/auditveil/tools")
    for candidate in (Path(tools) / "bin" / f"kustomize-{KUSTOMIZE_VERSION}", shutil.which("kustomize")):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail("kustomize is missing: run scripts/setup.sh (scripts/setup.d/40-kustomize.sh builds it)")


def _raw_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in (".yaml", ".yml"))


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _raw_resources() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in _raw_files():
        for doc in _docs(path.read_text(encoding="utf-8")):
            if doc.get("kind") in ("Kustomization", "Component") or "apiVersion" not in doc:
                continue  # kustomize inputs and kustomize configuration, not cluster objects
            out.append(doc)
    return out


COMPONENTS = sorted(p.parent for p in (K8S / "components").glob("*/kustomization.yaml"))
TARGETS = ["base"] + [f"overlays/{p.name}" for p in OVERLAYS] + [f"components/{p.name}" for p in COMPONENTS]


@pytest.fixture(scope="module", params=TARGETS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What kubectl would apply: the base, each overlay, and the base with each HSM component
    (a component no overlay uses is still rendered and checked)."""
    target = K8S / request.param
    if request.param.startswith("components/"):
        wrapper = tmp_path_factory.mktemp("kustomize")
        (wrapper / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": [os.path.relpath(K8S / "base", wrapper)],
                    "components": [os.path.relpath(target, wrapper)],
                }
            )
        )
        target = wrapper
    proc = subprocess.run([_kustomize(), "build", str(target)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"kustomize build {request.param} failed: {proc.stderr}"
    docs = _docs(proc.stdout)
    assert docs, f"{request.param} renders nothing"
    return docs


def _pod_specs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec in a workload, named for messages."""
    kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
    spec = doc.get("spec", {})
    if kind == "Pod":
        yield f"{kind}/{name}", spec
    elif kind == "CronJob":
        yield f"{kind}/{name}", spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield f"{kind}/{name}", spec["template"]["spec"]
    elif kind == "FlinkDeployment":
        for part in ("podTemplate", "jobManager", "taskManager"):
            tmpl = spec.get(part, {}).get("podTemplate") if part != "podTemplate" else spec.get("podTemplate")
            if tmpl:
                yield f"{kind}/{name}/{part}", tmpl.get("spec", {})


def _pod_metadata(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    kind, name, spec = doc.get("kind"), doc.get("metadata", {}).get("name"), doc.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield f"{kind}/{name}", spec["template"].get("metadata", {})
    elif kind == "FlinkDeployment":
        for part in ("jobManager", "taskManager"):
            yield f"{kind}/{name}/{part}", spec[part]["podTemplate"].get("metadata", {})


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod.get("initContainers", []) or []
    yield from pod.get("containers", []) or []


def _flink_pod(doc: dict[str, Any], part: str) -> dict[str, Any]:
    """A FlinkDeployment's JobManager or TaskManager pod as the operator builds it: the common
    pod template merged with the role's one, arrays merged by name (as configured)."""
    assert doc["spec"]["flinkConfiguration"].get("kubernetes.operator.pod-template.merge-arrays-by-name") == "true"
    return _merge(doc["spec"].get("podTemplate", {}).get("spec", {}), doc["spec"][part]["podTemplate"]["spec"])


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(a[k], v) if k in a else v
        return out
    if isinstance(a, list) and isinstance(b, list) and all(isinstance(x, dict) and "name" in x for x in a + b):
        merged = {x["name"]: x for x in a}
        for x in b:
            merged[x["name"]] = _merge(merged[x["name"]], x) if x["name"] in merged else x
        return list(merged.values())
    return b


def _effective_pods(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc.get("kind") == "FlinkDeployment":
            for part in ("jobManager", "taskManager"):
                yield f"FlinkDeployment/{doc['metadata']['name']}/{part}", _flink_pod(doc, part)
        elif doc.get("kind") in WORKLOAD_KINDS:
            yield from _pod_specs(doc)


def _eu_regions() -> set[str]:
    data = tomllib.loads((ROOT / "schemas" / "jurisdiction.toml").read_text(encoding="utf-8"))
    regions = set(data.get("self_hosted", {}).get("eu_regions", []))
    for provider in data.get("providers", []):
        regions.update(provider.get("eu_regions", []))
    return regions


# -- the raw files -------------------------------------------------------------------------------


def test_every_yaml_file_parses_and_names_its_kind() -> None:
    files = _raw_files()
    assert len(files) >= 15, "deploy/k8s lost its manifests"
    for path in files:
        docs = _docs(path.read_text(encoding="utf-8"))
        assert docs, f"{path.relative_to(ROOT)} is empty"
        for doc in docs:
            assert isinstance(doc, dict), f"{path.relative_to(ROOT)} holds a non-mapping document"
            assert doc.get("kind") or {"images", "nameReference"} & set(doc), (
                f"{path.relative_to(ROOT)} has a document without a kind"
            )


def test_no_secret_object_carries_values() -> None:
    for doc in _raw_resources():
        if doc.get("kind") == "Secret":
            pytest.fail(f"Secret {doc['metadata']['name']} is committed; create it out of band (deploy/README.md)")
    for path in _raw_files():
        for doc in _docs(path.read_text(encoding="utf-8")):
            for gen in doc.get("secretGenerator", []) or []:
                pytest.fail(f"{path.relative_to(ROOT)} generates Secret {gen.get('name')} from the repository")


def test_cluster_config_loads_with_the_real_loader_and_holds_no_secret(tmp_path: Path) -> None:
    from pipeline.config import load_settings

    config = K8S / "base" / "config" / "auditveil.toml"
    text = config.read_text(encoding="utf-8")
    assert not SECRET_CONFIG_KEY.search(text), "a secret is written into the cluster configuration"
    settings = load_settings(str(config), env={})
    assert settings.pkcs11.pin is None and settings.pkcs11.custodian_pin is None
    assert settings.pkcs11.separate_custodian_token, "the pipeline token must not hold the custodians' key"
    assert settings.reid.db.startswith("postgresql://") and "@" in settings.reid.db
    userinfo = settings.reid.db.split("://", 1)[1].split("@", 1)[0]
    assert ":" not in userinfo, "the database URL carries a password; it belongs in the PGPASSFILE Secret"
    assert settings.storage.strict_sovereignty


# -- the rendered overlays -----------------------------------------------------------------------


def test_rendered_objects_carry_eu_jurisdiction_and_region_labels(rendered: list[dict[str, Any]]) -> None:
    eu = _eu_regions()
    for doc in rendered:
        labels = doc.get("metadata", {}).get("labels", {}) or {}
        what = f"{doc['kind']}/{doc['metadata']['name']}"
        assert labels.get("auditveil.io/jurisdiction") == "eu", f"{what} lacks auditveil.io/jurisdiction=eu"
        assert labels.get("topology.kubernetes.io/region") in eu, f"{what} lacks an EU region label"
    for doc in rendered:
        for what, meta in _pod_metadata(doc):
            labels = meta.get("labels", {}) or {}
            assert labels.get("auditveil.io/jurisdiction") == "eu", f"pods of {what} lack the jurisdiction label"
            assert labels.get("topology.kubernetes.io/region") in eu, f"pods of {what} lack an EU region label"


def test_pods_are_scheduled_only_in_the_labelled_eu_region(rendered: list[dict[str, Any]]) -> None:
    eu = _eu_regions()
    for what, pod in _effective_pods(rendered):
        terms = (
            pod.get("affinity", {})
            .get("nodeAffinity", {})
            .get("requiredDuringSchedulingIgnoredDuringExecution", {})
            .get("nodeSelectorTerms", [])
        )
        regions = {
            v
            for t in terms
            for e in t.get("matchExpressions", [])
            if e.get("key") == "topology.kubernetes.io/region" and e.get("operator") == "In"
            for v in e.get("values", [])
        }
        assert regions and regions <= eu, f"{what} may be scheduled outside the EU regions"


def test_no_privileged_or_host_access(rendered: list[dict[str, Any]]) -> None:
    for what, pod in _effective_pods(rendered):
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(field), f"{what} sets {field}"
        for vol in pod.get("volumes", []) or []:
            assert "hostPath" not in vol, f"{what} mounts a hostPath volume"
        for c in _containers(pod):
            sc = c.get("securityContext", {}) or {}
            assert sc.get("privileged") is not True, f"{what}/{c['name']} is privileged"
            assert sc.get("allowPrivilegeEscalation") is False, f"{what}/{c['name']} may escalate privileges"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{what}/{c['name']} keeps capabilities"
            assert not sc.get("capabilities", {}).get("add"), f"{what}/{c['name']} adds capabilities"
            assert sc.get("readOnlyRootFilesystem") is True, f"{what}/{c['name']} has a writable root filesystem"


def test_pods_run_as_non_root_with_runtime_default_seccomp(rendered: list[dict[str, Any]]) -> None:
    for what, pod in _effective_pods(rendered):
        psc = pod.get("securityContext", {}) or {}
        assert psc.get("runAsNonRoot") is True, f"{what} does not require a non-root user"
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{what} lacks seccomp RuntimeDefault"
        for c in _containers(pod):
            uid = (c.get("securityContext", {}) or {}).get("runAsUser", psc.get("runAsUser"))
            assert isinstance(uid, int) and uid > 0, f"{what}/{c['name']} does not pin a non-root uid"


def test_images_are_pinned_versions(rendered: list[dict[str, Any]]) -> None:
    images: list[tuple[str, str]] = []
    for doc in rendered:
        if doc.get("kind") == "FlinkDeployment":
            images.append((f"FlinkDeployment/{doc['metadata']['name']}", doc["spec"]["image"]))
    for what, pod in _effective_pods(rendered):
        images += [(f"{what}/{c['name']}", c["image"]) for c in _containers(pod) if "image" in c]
    assert len(images) >= 5
    for what, image in images:
        name, _, digest = image.partition("@")
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
        assert digest.startswith("sha256:") or tag, f"{what} uses an untagged image"
        assert tag.lower() != "latest", f"{what} uses :latest"
        assert digest or re.match(r"^v?\d+(\.\d+)+", tag), f"{what} uses a tag that is not a version: {tag}"


def test_every_container_has_requests_and_limits(rendered: list[dict[str, Any]]) -> None:
    for doc in rendered:
        if doc.get("kind") == "FlinkDeployment":
            for part in ("jobManager", "taskManager"):
                res = doc["spec"][part]["resource"]
                assert res.get("cpu") and res.get("memory"), f"Flink {part} lacks cpu/memory"
    for what, pod in _effective_pods(rendered):
        for c in _containers(pod):
            if what.startswith("FlinkDeployment/") and c["name"] == "flink-main-container":
                continue  # sized by spec.<role>.resource (checked above)
            res = c.get("resources", {}) or {}
            for kind in ("requests", "limits"):
                got = res.get(kind, {}) or {}
                assert got.get("cpu") and got.get("memory"), f"{what}/{c['name']} lacks {kind} for cpu/memory"


def test_secrets_are_only_referenced(rendered: list[dict[str, Any]]) -> None:
    for doc in rendered:
        if doc.get("kind") == "Secret":
            pytest.fail(f"the render contains Secret {doc['metadata']['name']} with its values")
        if doc.get("kind") == "ConfigMap":
            for key, value in (doc.get("data", {}) or {}).items():
                assert not SECRET_ENV.search(key) or key.endswith("_FILE"), f"ConfigMap key {key} looks secret"
                assert not SECRET_CONFIG_KEY.search(str(value)), f"ConfigMap {key} carries a secret value"
    for what, pod in _effective_pods(rendered):
        for c in _containers(pod):
            for env in c.get("env", []) or []:
                if "value" in env and SECRET_ENV.search(env["name"]):
                    assert env["name"].endswith("_FILE") and str(env["value"]).startswith("/"), (
                        f"{what}/{c['name']} sets {env['name']} inline; reference a Secret"
                    )
            assert "AUDITVEIL_PKCS11_PIN" not in {e["name"] for e in c.get("env", []) or []}, (
                f"{what}/{c['name']} passes the HSM PIN in the environment; use AUDITVEIL_PKCS11_PIN_FILE"
            )
            for arg in (c.get("command", []) or []) + (c.get("args", []) or []):
                assert not re.search(r"--(pin|password|secret)", str(arg), re.I), (
                    f"{what}/{c['name']} passes a secret as an argument"
                )


def test_secret_files_reach_containers_owner_only(rendered: list[dict[str, Any]]) -> None:
    """Secret files are copied 0600 into memory by an init container, since auditveil and
    libpq refuse secret files that group or others may read."""
    for what, pod in _effective_pods(rendered):
        users = [
            c
            for c in pod.get("containers", [])
            if any(e.get("name") in ("AUDITVEIL_PKCS11_PIN_FILE", "PGPASSFILE") for e in c.get("env", []) or [])
        ]
        if not users:
            continue
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        assert vols["secrets"].get("emptyDir", {}).get("medium") == "Memory", f"{what}: secrets are not in memory"
        init = {c["name"]: c for c in pod.get("initContainers", [])}
        assert "secrets-owner-only" in init, f"{what} lacks the owner-only copy of its secrets"
        assert "install -m 0600" in " ".join(init["secrets-owner-only"]["command"])
        for c in users:
            mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
            assert mounts["secrets"].get("readOnly") is True
            assert "secrets-in" not in mounts, f"{what}/{c['name']} reads the group-readable originals"


def test_reid_service_has_probes_service_and_network_policy(rendered: list[dict[str, Any]]) -> None:
    deployments = [d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"] == "auditveil-reid"]
    assert len(deployments) == 1
    dep = deployments[0]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    (reid,) = [c for c in pod["spec"]["containers"] if c["name"] == "reid"]
    assert reid["args"][0] == "serve" and "--tls-cert" in reid["args"], "the service must serve TLS off loopback"
    port = reid["ports"][0]["containerPort"]
    for probe in ("readinessProbe", "livenessProbe"):
        get = reid[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["scheme"] == "HTTPS", f"{probe} is not an HTTPS health check"
    services = [
        s
        for s in rendered
        if s["kind"] == "Service" and all(labels.get(k) == v for k, v in s["spec"]["selector"].items())
    ]
    assert services, "no Service selects the re-identification pods"
    policies = [
        p
        for p in rendered
        if p["kind"] == "NetworkPolicy"
        and p["spec"]["podSelector"].get("matchLabels")
        and all(labels.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items())
        and "Ingress" in p["spec"]["policyTypes"]
    ]
    assert policies, "no NetworkPolicy restricts ingress to the re-identification service"
    for pol in policies:
        for rule in pol["spec"].get("ingress", []):
            assert rule.get("from"), "an ingress rule admits every source"
            assert {p["port"] for p in rule["ports"]} == {port}
    deny = [
        p
        for p in rendered
        if p["kind"] == "NetworkPolicy"
        and p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, "the namespace has no default-deny NetworkPolicy"


def test_each_role_has_its_own_service_account(rendered: list[dict[str, Any]]) -> None:
    accounts = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "ServiceAccount"}
    used: dict[str, str] = {}
    for doc in rendered:
        if doc["kind"] == "FlinkDeployment":
            conf = doc["spec"]["flinkConfiguration"]
            used["jobmanager"] = conf["kubernetes.jobmanager.service-account"]
            used["taskmanager"] = conf["kubernetes.taskmanager.service-account"]
            assert doc["spec"]["serviceAccount"] == used["jobmanager"]
            assert doc["spec"]["taskManager"]["podTemplate"]["spec"]["serviceAccountName"] == used["taskmanager"]
        elif doc["kind"] in ("Deployment", "Job"):
            used[doc["metadata"]["name"]] = doc["spec"]["template"]["spec"]["serviceAccountName"]
    assert len(set(used.values())) == len(used), f"roles share a service account: {used}"
    assert "default" not in used.values()
    for role, sa in used.items():
        assert sa in accounts, f"{role} uses service account {sa}, which is not defined"
        # Only the JobManager talks to the Kubernetes API (it manages its TaskManagers).
        assert accounts[sa].get("automountServiceAccountToken") is (role == "jobmanager"), role
    bindings = [b for b in rendered if b["kind"] == "RoleBinding"]
    bound = {s["name"] for b in bindings for s in b["subjects"]}
    assert bound == {used["jobmanager"]}, "only the JobManager may hold Kubernetes API rights"


def test_storage_credentials_are_separate_per_role(rendered: list[dict[str, Any]]) -> None:
    """The writers (TaskManagers) and the re-identification service hold different storage
    credentials; the JobManager (driver) holds none."""
    creds: dict[str, set[str]] = {}
    for what, pod in _effective_pods(rendered):
        names = set()
        for vol in pod.get("volumes", []) or []:
            for src in vol.get("projected", {}).get("sources", []):
                if "secret" in src and src["secret"]["name"].endswith("-s3"):
                    names.add(src["secret"]["name"])
        creds[what] = names
    tm = next(v for k, v in creds.items() if k.endswith("/taskManager"))
    jm = next(v for k, v in creds.items() if k.endswith("/jobManager"))
    reid = creds["Deployment/auditveil-reid"]
    assert tm == {"auditveil-pipeline-writer-s3"}
    assert jm == set()
    assert reid == {"auditveil-reid-s3"}
    assert creds["Job/auditveil-keys-init"] == set()


def test_beam_worker_pool_listens_on_pod_loopback_only(rendered: list[dict[str, Any]]) -> None:
    (flink,) = [d for d in rendered if d["kind"] == "FlinkDeployment"]
    tm = _flink_pod(flink, "taskManager")
    (pool,) = [c for c in tm["containers"] if c["name"] == "beam-worker-pool"]
    cmd = pool["command"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    port = cmd[cmd.index("--port") + 1]
    driver = shlex.split(flink["spec"]["job"]["args"][1])
    assert f"environment_config=localhost:{port}" in driver


def test_referenced_secrets_are_documented(rendered: list[dict[str, Any]]) -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    names: set[str] = set()
    for _what, pod in _effective_pods(rendered):
        for vol in pod.get("volumes", []) or []:
            if "secret" in vol:
                names.add(vol["secret"]["secretName"])
            for src in vol.get("projected", {}).get("sources", []):
                if "secret" in src:
                    names.add(src["secret"]["name"])
        for c in _containers(pod):
            for env in c.get("env", []) or []:
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
    assert names
    for name in sorted(names):
        assert f"`{name}`" in readme, f"deploy/README.md does not say how to create Secret {name}"


def test_auditveil_environment_variables_name_real_settings(rendered: list[dict[str, Any]]) -> None:
    """A typo in AUDITVEIL_<SECTION>_<NAME> is silently ignored by the loader; catch it here."""
    import dataclasses
    import typing

    from pipeline.config import Settings

    known = {"AUDITVEIL_CONFIG"}
    for sec in dataclasses.fields(Settings):
        sec_type = typing.get_type_hints(Settings)[sec.name]
        known |= {f"AUDITVEIL_{sec.name}_{f.name}".upper() for f in dataclasses.fields(sec_type)}
    seen: set[str] = set()
    for doc in rendered:
        if doc["kind"] == "ConfigMap":
            seen |= {k for k in (doc.get("data", {}) or {}) if k.startswith("AUDITVEIL_")}
    for _what, pod in _effective_pods(rendered):
        for c in _containers(pod):
            seen |= {e["name"] for e in c.get("env", []) or [] if e["name"].startswith("AUDITVEIL_")}
    assert seen
    assert not seen - known, f"not settings auditveil knows: {sorted(seen - known)}"


def _secret_sources(pod: dict[str, Any]) -> set[str]:
    names = set()
    for vol in pod.get("volumes", []) or []:
        if "secret" in vol:
            names.add(vol["secret"]["secretName"])
        for src in vol.get("projected", {}).get("sources", []):
            if "secret" in src:
                names.add(src["secret"]["name"])
    return names


def test_each_hsm_pin_reaches_only_its_role(rendered: list[dict[str, Any]]) -> None:
    """The pipeline holds the pipeline token's PIN only (it computes tokens, it must never
    unwrap); the re-identification service holds the custodian PIN only (it unwraps, it never
    computes tokens)."""
    pins = {"auditveil-hsm-pin", "auditveil-hsm-custodian-pin", "auditveil-hsm-admin-pin"}
    held = {what: _secret_sources(pod) & pins for what, pod in _effective_pods(rendered)}
    for what, names in held.items():
        if "FlinkDeployment/" in what:
            assert names == {"auditveil-hsm-pin"}, f"{what} holds {sorted(names)}"
        elif what == "Deployment/auditveil-reid":
            assert names == {"auditveil-hsm-custodian-pin"}, f"{what} holds {sorted(names)}"
    assert any(w == "Deployment/auditveil-reid" for w in held)
