"""configs/kubernetes: every overlay and the sidecar example render (`kubectl kustomize` when
kubectl is installed, otherwise a small reader of the base and overlay files), and the rendered
documents tie together: selectors match the pod labels, Service, container, NetworkPolicy and
meltp config ports agree, probes hit /readyz and /healthz on the health_check port, the
memory limit leaves the documented headroom over memory_limiter, and the rendered ConfigMap
passes `meltp check-config` with the environment the Deployment gives it."""
import filecmp
import glob
import os
import shutil
import subprocess
import tempfile

import pytest
import yaml

from harness import MELTP, ROOT

K8S = os.path.join(ROOT, "configs", "kubernetes")
OVERLAYS = ["dev", "stage", "demo"]
DATA_PORTS = {4317, 4318, 19291}


def _kubectl(path):
    r = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def _load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _fallback(path):
    """Without kubectl: the resources of the kustomization and its bases, the
    configMapGenerator ConfigMaps (merge/replace), namespace and images; patches are not
    applied, so the checks below see the base's shapes with the overlay's data."""
    k = _load(os.path.join(path, "kustomization.yaml"))[0]
    docs, cms = [], {}
    for res in k.get("resources", []):
        p = os.path.join(path, res)
        if os.path.isdir(p):
            sub = _fallback(p)
            docs += [d for d in sub if d["kind"] != "ConfigMap"]
            cms.update({d["metadata"]["name"]: d for d in sub if d["kind"] == "ConfigMap"})
        else:
            docs += _load(p)
    for g in k.get("configMapGenerator", []):
        data = {}
        for lit in g.get("literals", []):
            key, _, val = lit.partition("=")
            data[key] = val
        for f in g.get("files", []):
            key, _, src = f.rpartition("=") if "=" in f else (os.path.basename(f), "", f)
            with open(os.path.join(path, src)) as fh:
                data[key] = fh.read()
        old = cms.get(g["name"])
        if old and g.get("behavior") == "merge":
            old["data"].update(data)
        else:
            cms[g["name"]] = {"kind": "ConfigMap", "apiVersion": "v1",
                              "metadata": {"name": g["name"]}, "data": data}
    docs += cms.values()
    for d in docs:
        if k.get("namespace"):
            d["metadata"]["namespace"] = k["namespace"]
        if d["kind"] == "Deployment":
            for c in d["spec"]["template"]["spec"]["containers"]:
                for img in k.get("images", []):
                    if c["image"] == img["name"]:
                        c["image"] = "%s:%s" % (img.get("newName", img["name"]), img["newTag"])
        if d["kind"] == "ConfigMap":
            continue
        for lbl in k.get("labels", []):
            d["metadata"].setdefault("labels", {}).update(lbl["pairs"])
            if lbl.get("includeSelectors"):
                _add_selector_labels(d, lbl["pairs"])
    return docs


def _add_selector_labels(d, pairs):
    spec = d.get("spec", {})
    if d["kind"] == "Deployment":
        spec.setdefault("selector", {}).setdefault("matchLabels", {}).update(pairs)
        spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    elif d["kind"] == "Service":
        spec.setdefault("selector", {}).update(pairs)
    elif d["kind"] == "PodDisruptionBudget":
        spec.setdefault("selector", {}).setdefault("matchLabels", {}).update(pairs)
    elif d["kind"] == "NetworkPolicy":
        spec.setdefault("podSelector", {}).setdefault("matchLabels", {}).update(pairs)


def _by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


def _cm(docs, name):
    """The ConfigMap generated as `name` (kustomize appends a hash)."""
    for d in docs:
        n = d["metadata"]["name"]
        if d["kind"] == "ConfigMap" and (n == name or n.rsplit("-", 1)[0] == name):
            return d
    raise AssertionError("no ConfigMap " + name)


def _port(endpoint):
    return int(endpoint.rsplit(":", 1)[1])


def _mib(q):
    units = {"Mi": 1, "Gi": 1024, "Ki": 1 / 1024.0}
    for u, f in units.items():
        if q.endswith(u):
            return float(q[:-2]) * f
    return float(q) / (1 << 20)


def _check_config(text, env, slos, cfgname="meltp.yaml"):
    """Writes the config as the pod sees it (config/ and slos/ side by side) and runs
    check-config with the pod's environment."""
    d = tempfile.mkdtemp(prefix="meltp-k8s-")
    try:
        os.makedirs(os.path.join(d, "config"))
        os.makedirs(os.path.join(d, "slos"))
        path = os.path.join(d, "config", cfgname)
        with open(path, "w") as f:
            f.write(text)
        for k, v in slos.items():
            with open(os.path.join(d, "slos", k), "w") as f:
                f.write(v)
        e = {k: v for k, v in os.environ.items() if not k.startswith(("MELTP_", "TEMPO", "LOKI"))}
        e.update(env)
        r = subprocess.run([MELTP, "check-config", "--config", path], capture_output=True,
                           text=True, env=e)
        assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(d)


def _check_gateway(docs, overlay, rendered):
    k = _by_kind(docs)
    for kind in ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                 "NetworkPolicy", "ServiceAccount"]:
        assert len(k.get(kind, [])) == 1, (overlay, kind)
    dep, svc = k["Deployment"][0], k["Service"][0]
    hpa, pdb, np = k["HorizontalPodAutoscaler"][0], k["PodDisruptionBudget"][0], k["NetworkPolicy"][0]
    for d in docs:
        assert d["metadata"].get("namespace") == "meltp-" + overlay, d["metadata"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    sel = dep["spec"]["selector"]["matchLabels"]
    assert sel and sel.items() <= pod_labels.items()
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert np["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]

    pod = dep["spec"]["template"]["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "meltp"]
    cports = {p["name"]: p["containerPort"] for p in c["ports"]}
    sports = {p["port"]: p["targetPort"] for p in svc["spec"]["ports"]}
    assert DATA_PORTS <= set(sports)
    for port, target in sports.items():
        assert cports[target] == port, (port, target)
    np_ports = {p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]}
    assert DATA_PORTS <= np_ports

    # the config the pod runs, with the environment the pod gets
    args = c["args"]
    cfg_path = args[args.index("--config") + 1]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    cfg_vol = vols[mounts[os.path.dirname(cfg_path)]]
    cfg_cm = _cm(docs, "meltp-config")
    if rendered:
        assert cfg_vol["configMap"]["name"] == cfg_cm["metadata"]["name"]
    text = cfg_cm["data"][os.path.basename(cfg_path)]
    slo_vol = vols[mounts[os.path.join(os.path.dirname(os.path.dirname(cfg_path)), "slos")]]
    slo_cm = _cm(docs, "meltp-slos")
    if rendered:
        assert slo_vol["configMap"]["name"] == slo_cm["metadata"]["name"]
    env_cm = _cm(docs, "meltp-env")
    refs = [e["configMapRef"]["name"] for e in c.get("envFrom", [])]
    if rendered:
        assert refs == [env_cm["metadata"]["name"]]
    env = env_cm["data"]
    assert env["MELTP_ENV"] == overlay
    _check_config(text, env, slo_cm["data"])

    cfg = yaml.safe_load(text)
    rec = cfg["receivers"]
    assert _port(rec["otlp"]["protocols"]["http"]["endpoint"]) == cports["otlp-http"] == 4318
    assert _port(rec["otlp"]["protocols"]["grpc"]["endpoint"]) == cports["otlp-grpc"] == 4317
    assert _port(rec["prometheusremotewrite"]["endpoint"]) == cports["prom-rw"] == 19291
    health = _port(cfg["extensions"]["health_check"]["endpoint"])
    assert cports["health"] == health
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        p = c[probe]["httpGet"]["port"]
        assert (cports[p] if isinstance(p, str) else p) == health
    assert _port(cfg["service"]["telemetry"]["metrics"]["address"]) == cports["metrics"]
    # docs/OPERATIONS.md "Memory limits": limit = limit_mib + 96 MiB at least
    ml = cfg["processors"]["memory_limiter"]
    assert _mib(c["resources"]["limits"]["memory"]) >= ml["limit_mib"] + 96
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    # queues and SLO state on the state volume
    state_mount = [m for m in c["volumeMounts"] if m["name"] == "state"][0]["mountPath"]
    assert cfg["extensions"]["file_storage"]["directory"].startswith(state_mount + "/")
    assert cfg["slo"]["state_dir"].startswith(state_mount + "/")
    assert "emptyDir" in vols["state"] or "persistentVolumeClaim" in vols["state"]
    if rendered and "persistentVolumeClaim" in vols["state"]:
        pvcs = [d["metadata"]["name"] for d in k.get("PersistentVolumeClaim", [])]
        assert vols["state"]["persistentVolumeClaim"]["claimName"] in pvcs
    return dep, vols


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_ties_together(overlay):
    path = os.path.join(K8S, "overlays", overlay)
    if shutil.which("kubectl"):
        dep, vols = _check_gateway(_kubectl(path), overlay, True)
        if overlay == "demo":
            assert "persistentVolumeClaim" in vols["state"]
            assert dep["spec"]["strategy"]["type"] == "Recreate"
        else:
            assert "emptyDir" in vols["state"]
    else:
        print("kubectl not found: checking the parsed files")
    # the fallback reader is checked too, so a machine without kubectl runs tested code
    _check_gateway(_fallback(path), overlay, False)


def test_overlays_differ_per_environment():
    if not shutil.which("kubectl"):
        pytest.skip("kubectl not found")
    envs = {o: _cm(_kubectl(os.path.join(K8S, "overlays", o)), "meltp-env")["data"]
            for o in OVERLAYS}
    assert len({e["MELTP_TENANT"] for e in envs.values()}) == 3
    slos = {o: sorted(_cm(_kubectl(os.path.join(K8S, "overlays", o)), "meltp-slos")["data"])
            for o in OVERLAYS}
    assert slos["dev"] != slos["demo"] and len(slos["demo"]) == 3


def test_slo_specs_are_the_examples():
    """The SLO specs kustomize packs are copies of rules/slos: they must not drift."""
    copies = glob.glob(os.path.join(K8S, "**", "slos", "*.yaml"), recursive=True)
    assert copies
    for p in copies:
        src = os.path.join(ROOT, "rules", "slos", os.path.basename(p))
        assert filecmp.cmp(p, src, shallow=False), p


def test_sidecar_snippet():
    path = os.path.join(K8S, "sidecar")
    docs = _kubectl(path) if shutil.which("kubectl") else None
    snippet = _load(os.path.join(path, "sidecar-snippet.yaml"))[0]
    (side,) = snippet["spec"]["template"]["spec"]["containers"]
    with open(os.path.join(path, "meltp-sidecar.yaml")) as f:
        text = f.read()
    cfg = yaml.safe_load(text)
    _check_config(text, {e["name"]: e["value"] for e in side.get("env", [])}, {})
    app = _load(os.path.join(path, "example-app.yaml"))[0]
    if docs:
        (dep,) = [d for d in docs if d["kind"] == "Deployment"]
        names = [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]]
        assert sorted(names) == ["app", "meltp"]
        cm = _cm(docs, "meltp-sidecar")
        vol = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "meltp-config"]
        assert vol[0]["configMap"]["name"] == cm["metadata"]["name"]
        assert cm["data"]["meltp.yaml"] == text
        app = dep
    # the app sends to the sidecar over the shared localhost
    (a,) = [c for c in app["spec"]["template"]["spec"]["containers"] if c["name"] == "app"]
    endpoint = {e["name"]: e["value"] for e in a["env"]}["OTEL_EXPORTER_OTLP_ENDPOINT"]
    listen = cfg["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert listen.startswith("127.0.0.1:") and endpoint == "http://localhost:%d" % _port(listen)
    ports = {p["name"]: p["containerPort"] for p in side["ports"]}
    assert ports[side["livenessProbe"]["httpGet"]["port"]] == _port(
        cfg["extensions"]["health_check"]["endpoint"])
    assert side["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # the sidecar must not make the application's pod unready when the gateway is away
    assert "readinessProbe" not in side
    assert _mib(side["resources"]["limits"]["memory"]) >= cfg["processors"]["memory_limiter"]["limit_mib"] + 96
