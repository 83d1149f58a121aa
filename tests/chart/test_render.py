#!/usr/bin/env python3
"""Template unit tests of helm/aetherbus over the YAML helm renders.

Each test renders the chart with `helm template` (the binary named by
AB_HELM) and asserts on the objects: kinds and names, probes, environment,
Secret references, Ingress paths, securityContext, for the defaults, the
"external Kafka with SASL_SSL" values file and the Strimzi toggle.
Run: AB_HELM=~/.cache/aetherbus/k8s/bin/helm python3 tests/chart/test_render.py
Needs PyYAML only; prints "N passed, N failed" and exits 1 on a failure.
"""
import json
import os
import subprocess
import sys
import traceback

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(HERE, "..", "..", "helm", "aetherbus")
SASL = os.path.join(HERE, "values-external-sasl.yaml")
HELM = os.environ.get("AB_HELM", "helm")
MONITORING = ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
              "--api-versions", "monitoring.coreos.com/v1/PrometheusRule"]
SERVICES = ["ingest", "stats", "sink", "audit"]

_cache = {}


def render(*args):
    """Objects of `helm template t CHART args`, keyed by (kind, name)."""
    if args in _cache:
        return _cache[args]
    out = subprocess.run([HELM, "template", "t", CHART, *args], check=True,
                         capture_output=True, text=True).stdout
    objs = {}
    for doc in yaml.safe_load_all(out):
        if not doc:
            continue
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in objs, f"rendered twice: {key}"
        objs[key] = doc
    _cache[args] = objs
    return objs


def defaults(*extra):
    return render("--set", "kafka.brokers=kafka:9092", *extra)


def sasl(*extra):
    return render("-f", SASL, *extra)


def kinds(objs):
    return sorted(objs)


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def container(obj):
    cs = pod_spec(obj)["containers"]
    assert len(cs) == 1, cs
    return cs[0]


def env_of(c):
    """name -> value, or ("secret", name, key) for a secretKeyRef."""
    out = {}
    for e in c.get("env") or []:
        assert e["name"] not in out, f"duplicate env {e['name']}"
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            out[e["name"]] = ("secret", ref["name"], ref["key"])
        else:
            out[e["name"]] = e["value"]
    return out


def workload(objs, svc):
    kind = "StatefulSet" if svc == "audit" else "Deployment"
    return objs[(kind, f"t-aetherbus-{svc}")]


def secret_volume_refs(spec):
    """Every Secret a pod names: volumes, envFrom and env."""
    refs = set()
    for v in spec.get("volumes") or []:
        if "secret" in v:
            refs.add(v["secret"]["secretName"])
    for c in spec["containers"]:
        for ef in c.get("envFrom") or []:
            if "secretRef" in ef:
                refs.add(ef["secretRef"]["name"])
        for e in c.get("env") or []:
            if "valueFrom" in e:
                refs.add(e["valueFrom"]["secretKeyRef"]["name"])
    return refs


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# ---- kinds and names -------------------------------------------------------

@test
def default_kinds_and_names():
    got = kinds(defaults())
    want = sorted(
        [("ConfigMap", "t-aetherbus-config"), ("Secret", "t-aetherbus-tokens"),
         ("Deployment", "t-aetherbus-ingest"), ("Deployment", "t-aetherbus-stats"),
         ("Deployment", "t-aetherbus-sink"), ("StatefulSet", "t-aetherbus-audit"),
         ("Job", "t-aetherbus-topics"),
         ("HorizontalPodAutoscaler", "t-aetherbus-ingest"),
         ("HorizontalPodAutoscaler", "t-aetherbus-sink"),
         # ingest runs at least 2 replicas; stats and sink may run one,
         # and a PDB over one replica would block a drain.
         ("PodDisruptionBudget", "t-aetherbus-ingest")]
        + [("Service", f"t-aetherbus-{s}") for s in SERVICES]
        + [("NetworkPolicy", f"t-aetherbus-{s}") for s in SERVICES])
    assert got == want, got


@test
def sasl_kinds_and_names():
    got = kinds(sasl())
    assert ("Secret", "t-aetherbus-tokens") not in got  # existing secret
    assert ("Ingress", "t-aetherbus") in got
    for kind in ("Deployment", "Service", "NetworkPolicy", "HorizontalPodAutoscaler",
                 "PodDisruptionBudget"):
        assert (kind, "t-aetherbus-sink") not in got, kind  # sink off
    # stats runs 2 here, so it gets a PDB; audit never does.
    assert ("PodDisruptionBudget", "t-aetherbus-stats") in got
    assert ("PodDisruptionBudget", "t-aetherbus-ingest") in got
    assert not any(k == "PodDisruptionBudget" and n.endswith("audit") for k, n in got)


@test
def monitoring_only_with_crds():
    assert not [k for k in defaults() if k[0] in ("ServiceMonitor", "PrometheusRule")]
    objs = defaults(*MONITORING)
    sm = objs[("ServiceMonitor", "t-aetherbus")]
    assert sm["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "aetherbus", "app.kubernetes.io/instance": "t"}
    assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    rule = objs[("PrometheusRule", "t-aetherbus")]
    with open(os.path.join(CHART, "files", "aetherbus-rules.yaml")) as f:
        assert rule["spec"] == yaml.safe_load(f)
    # false wins over the CRDs; the SASL file adds the operator's label.
    off = defaults(*MONITORING, "--set", "metrics.serviceMonitor=false")
    assert ("ServiceMonitor", "t-aetherbus") not in off
    assert ("PrometheusRule", "t-aetherbus") in off
    lab = sasl(*MONITORING)[("ServiceMonitor", "t-aetherbus")]["metadata"]["labels"]
    assert lab["release"] == "kube-prometheus-stack"


@test
def audit_is_one_replica_with_a_claim():
    for objs in (defaults(), sasl()):
        sts = workload(objs, "audit")
        assert sts["spec"]["replicas"] == 1
        (claim,) = sts["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "data"
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        mounts = {m["name"]: m for m in container(sts)["volumeMounts"]}
        assert mounts["data"]["mountPath"] == "/var/lib/aetherbus"
        assert env_of(container(sts))["AUDIT_DB_PATH"] == "/var/lib/aetherbus/audit.db"
        assert "AUDIT_RETENTION_DAYS" not in env_of(container(sts))
    sts = workload(defaults("--set", "audit.retentionDays=30"), "audit")
    assert env_of(container(sts))["AUDIT_RETENTION_DAYS"] == "30"
    claim = workload(sasl(), "audit")["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["storageClassName"] == "gp3"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"


@test
def hpa_and_replicas():
    objs = defaults()
    for svc, lo, hi in (("ingest", 2, 10), ("sink", 1, 6)):
        hpa = objs[("HorizontalPodAutoscaler", f"t-aetherbus-{svc}")]
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": f"t-aetherbus-{svc}"}
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (lo, hi)
        # The HPA owns the count: a fixed replicas would fight it on upgrade.
        assert "replicas" not in workload(objs, svc)["spec"]
    assert workload(objs, "stats")["spec"]["replicas"] == 1
    fixed = defaults("--set", "ingest.autoscaling.enabled=false", "--set", "ingest.replicaCount=3")
    assert workload(fixed, "ingest")["spec"]["replicas"] == 3
    assert ("HorizontalPodAutoscaler", "t-aetherbus-ingest") not in fixed


# ---- topics: hook Job or Strimzi -------------------------------------------

@test
def topic_job_is_a_pre_install_hook():
    job = defaults()[("Job", "t-aetherbus-topics")]
    ann = job["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "hook-succeeded" in ann["helm.sh/hook-delete-policy"]
    c = container(job)
    assert c["image"] == "registry.example.com/aetherbus/aetherbus-admin:0.1.0"
    assert c["args"] == ["--brokers", "kafka:9092", "--topic-prefix", "events.",
                         "--partitions", "6", "--replication-factor", "3",
                         "topics", "create"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    sjob = sasl()[("Job", "t-aetherbus-topics")]
    c = container(sjob)
    assert c["args"][c["args"].index("--partitions") + 1] == "12"
    assert c["envFrom"] == [{"secretRef": {"name": "aetherbus-kafka"}}]
    assert env_of(c)["RDKAFKA_SSL_CA_LOCATION"] == "/etc/aetherbus/kafka-ca/ca.crt"
    assert c["volumeMounts"] == [{"name": "kafka-ca", "mountPath": "/etc/aetherbus/kafka-ca",
                                  "readOnly": True}]


@test
def strimzi_toggle():
    objs = defaults("--set", "topics.strimzi=true", "--set", "topics.strimziCluster=prod")
    assert ("Job", "t-aetherbus-topics") not in objs
    topics = {n: o for (k, n), o in objs.items() if k == "KafkaTopic"}
    # The same set as aetherbus-admin topics create: one per catalog prefix
    # of schemas/catalog.json, then the bus' own topics.
    with open(os.path.join(HERE, "..", "..", "schemas", "catalog.json")) as f:
        prefixes = sorted({e["prefix"] for e in json.load(f)["events"]})
    want = [f"events.{p}" for p in prefixes + ["rejected", "deadletter", "audit-checkpoints"]]
    assert sorted(t["spec"]["topicName"] for t in topics.values()) == sorted(want)
    assert "events-commerce" in topics and "events-audit-checkpoints" in topics
    t = topics["events-commerce"]
    assert t["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert t["metadata"]["labels"]["strimzi.io/cluster"] == "prod"
    assert t["spec"] == {"topicName": "events.commerce", "partitions": 6, "replicas": 3}
    own = defaults("--set", "topics.strimzi=true", "--set", "topics.names={a,b_c}",
                   "--set", "kafka.topicPrefix=Prod.")
    assert sorted(n for k, n in own if k == "KafkaTopic") == ["prod-a", "prod-b-c"]
    assert "namespace" not in t["metadata"]  # the release's
    own = defaults("--set", "topics.strimzi=true", "--set", "topics.strimziNamespace=kafka")
    assert {o["metadata"].get("namespace") for (k, _), o in own.items() if k == "KafkaTopic"} == {"kafka"}
    none = defaults("--set", "topics.create=false")
    assert not [k for k in none if k[0] in ("Job", "KafkaTopic")]


# ---- pods: probes, env, secrets, security ----------------------------------

@test
def probes():
    for objs in (defaults(), sasl()):
        for svc in SERVICES:
            if (("Deployment", f"t-aetherbus-{svc}") not in objs
                    and ("StatefulSet", f"t-aetherbus-{svc}") not in objs):
                continue
            c = container(workload(objs, svc))
            assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
            assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
            want = "/readyz" if svc == "stats" else "/healthz"
            assert c["startupProbe"]["httpGet"] == {"path": want, "port": "http"}, svc
    # stats' startup probe covers its rebuild of the last hour: 5 minutes.
    st = container(workload(defaults(), "stats"))["startupProbe"]
    assert st["failureThreshold"] * st["periodSeconds"] == 300


@test
def ports_match_services():
    objs = defaults()
    for svc, port in (("ingest", 8080), ("stats", 8081), ("sink", 8082), ("audit", 8083)):
        c = container(workload(objs, svc))
        assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert env_of(c)["PORT"] == str(port)
        s = objs[("Service", f"t-aetherbus-{svc}")]
        assert s["spec"]["ports"][0]["port"] == port
        assert s["spec"]["ports"][0]["targetPort"] == "http"
        assert s["spec"]["selector"] == workload(objs, svc)["spec"]["selector"]["matchLabels"]


@test
def default_env_and_secret():
    objs = defaults()
    cm = objs[("ConfigMap", "t-aetherbus-config")]["data"]
    assert cm == {"KAFKA_BROKERS": "kafka:9092", "TOPIC_PREFIX": "events.",
                  "LOG_LEVEL": "info", "RBAC_MODE": "off"}
    # No token value set: no key in the Secret and no variable (a service
    # refuses EVENT_INGEST_TOKEN="" at start).
    assert not objs[("Secret", "t-aetherbus-tokens")].get("data")
    for svc in SERVICES:
        c = container(workload(objs, svc))
        env = env_of(c)
        assert not [v for v in env.values() if isinstance(v, tuple)], (svc, env)
        assert c["envFrom"] == [{"configMapRef": {"name": "t-aetherbus-config"}}]
        assert "INGEST_CLIENTS_FILE" not in env and "AUDIT_SIGNING_KEY" not in env
    assert env_of(container(workload(objs, "sink")))["EVENT_SINK_URL"] == \
        "https://sink.example.com/events"


@test
def created_secret_is_referenced():
    objs = defaults("--set", "secrets.ingestToken=i", "--set", "secrets.sinkToken=s",
                    "--set", "secrets.adminToken=a", "--set", "secrets.auditSigningKey=k")
    data = objs[("Secret", "t-aetherbus-tokens")]["data"]
    assert sorted(data) == ["ADMIN_TOKEN", "EVENT_INGEST_TOKEN", "EVENT_SINK_TOKEN",
                            "audit-signing.key"]
    ref = lambda k: ("secret", "t-aetherbus-tokens", k)
    want = {"ingest": ["EVENT_INGEST_TOKEN", "ADMIN_TOKEN"], "stats": ["ADMIN_TOKEN"],
            "sink": ["EVENT_SINK_TOKEN", "ADMIN_TOKEN"], "audit": ["ADMIN_TOKEN"]}
    for svc, keys in want.items():
        env = env_of(container(workload(objs, svc)))
        got = sorted(k for k, v in env.items() if isinstance(v, tuple))
        assert got == sorted(keys), (svc, got)
        for k in keys:
            assert env[k] == ref(k)
    assert "INGEST_CLIENTS_FILE" not in env_of(container(workload(objs, "ingest")))
    # Per-client keys instead of the shared token: the file, and no token.
    keyed = defaults("--set", "secrets.clientKeys=[]", "--set", "secrets.adminToken=a")
    ing = workload(keyed, "ingest")
    env = env_of(container(ing))
    assert env["INGEST_CLIENTS_FILE"] == "/etc/aetherbus/keys/client-keys.json"
    assert "EVENT_INGEST_TOKEN" not in env
    vols = {v["name"]: v for v in pod_spec(ing)["volumes"]}
    assert vols["client-keys"]["secret"] == {
        "secretName": "t-aetherbus-tokens", "defaultMode": 0o440,
        "items": [{"key": "client-keys.json", "path": "client-keys.json"}]}
    aud = workload(objs, "audit")
    assert env_of(container(aud))["AUDIT_SIGNING_KEY"] == "/etc/aetherbus/signing/audit-signing.key"
    vols = {v["name"]: v for v in pod_spec(aud)["volumes"]}
    assert vols["signing-key"]["secret"]["secretName"] == "t-aetherbus-tokens"
    assert vols["signing-key"]["secret"]["items"] == [
        {"key": "audit-signing.key", "path": "audit-signing.key"}]


@test
def sasl_env_and_secret_references():
    objs = sasl()
    cm = objs[("ConfigMap", "t-aetherbus-config")]["data"]
    assert cm["KAFKA_BROKERS"].count(",") == 2
    assert cm["TOPIC_PREFIX"] == "prod.events."
    assert cm["RBAC_MODE"] == "enforce"
    assert cm["RDKAFKA_SSL_CA_LOCATION"] == "/etc/aetherbus/kafka-ca/ca.crt"
    for svc in ("ingest", "stats", "audit"):
        spec = pod_spec(workload(objs, svc))
        c = container(workload(objs, svc))
        # RDKAFKA_* (SASL_SSL, mechanism, user, password) from the Secret.
        assert c["envFrom"] == [{"configMapRef": {"name": "t-aetherbus-config"}},
                                {"secretRef": {"name": "aetherbus-kafka"}}]
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert mounts["kafka-ca"] == {"name": "kafka-ca", "mountPath": "/etc/aetherbus/kafka-ca",
                                      "readOnly": True}
        vols = {v["name"]: v for v in spec["volumes"]}
        assert vols["kafka-ca"]["secret"]["secretName"] == "kafka-cluster-ca"
        assert secret_volume_refs(spec) <= {"aetherbus-kafka", "kafka-cluster-ca",
                                            "aetherbus-tokens"}, secret_volume_refs(spec)
        env = env_of(c)
        assert env["ADMIN_TOKEN"] == ("secret", "aetherbus-tokens", "ADMIN_TOKEN")
        assert "EVENT_SINK_TOKEN" not in env  # not in existingSecretKeys
    ing = env_of(container(workload(objs, "ingest")))
    assert "EVENT_INGEST_TOKEN" not in ing  # per-client keys instead
    assert ing["INGEST_CLIENTS_FILE"] == "/etc/aetherbus/keys/client-keys.json"
    assert "AUDIT_SIGNING_KEY" in env_of(container(workload(objs, "audit")))


@test
def security_context():
    for objs in (defaults(), sasl()):
        for (kind, name), o in objs.items():
            if kind not in ("Deployment", "StatefulSet", "Job"):
                continue
            spec = pod_spec(o)
            psc = spec["securityContext"]
            assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532, name
            assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert spec["automountServiceAccountToken"] is False, name
            for c in spec["containers"]:
                sc = c["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True, name
                assert sc["allowPrivilegeEscalation"] is False, name
                assert sc["capabilities"] == {"drop": ["ALL"]}, name
                assert "privileged" not in sc, name
                for m in c.get("volumeMounts") or []:
                    # Only audit's database and /tmp are writable.
                    if m["name"] not in ("data", "tmp"):
                        assert m.get("readOnly") is True, (name, m)


@test
def labels_and_checksums():
    objs = defaults()
    for (kind, name), o in objs.items():
        lab = o["metadata"]["labels"]
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                  "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
                  "app.kubernetes.io/component", "app.kubernetes.io/part-of"):
            assert k in lab, (kind, name, k)
    base = {svc: workload(objs, svc)["spec"]["template"]["metadata"]["annotations"]
            for svc in SERVICES}
    changed = defaults("--set", "logLevel=debug")
    for svc in SERVICES:
        a = base[svc]
        assert set(a) == {"checksum/config", "checksum/secret"}
        b = workload(changed, svc)["spec"]["template"]["metadata"]["annotations"]
        # A config change rolls every pod; the Secret's checksum stays.
        assert a["checksum/config"] != b["checksum/config"], svc
        assert a["checksum/secret"] == b["checksum/secret"], svc
    tok = defaults("--set", "secrets.adminToken=x")
    assert (workload(tok, "ingest")["spec"]["template"]["metadata"]["annotations"]
            ["checksum/secret"] != base["ingest"]["checksum/secret"])


# ---- Ingress and NetworkPolicy ---------------------------------------------

@test
def ingress_routes():
    ing = sasl()[("Ingress", "t-aetherbus")]
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"hosts": ["bus.example.com"], "secretName": "bus-example-tls"}]
    assert ing["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/proxy-body-size": "2m"}
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "bus.example.com"
    routes = {p["path"]: (p["pathType"], p["backend"]["service"]["name"],
                          p["backend"]["service"]["port"]["number"])
              for p in rule["http"]["paths"]}
    assert routes == {
        "/events": ("Prefix", "t-aetherbus-ingest", 8080),
        "/bus": ("Prefix", "t-aetherbus-ingest", 8080),
        "/admin/events/stats": ("Prefix", "t-aetherbus-stats", 8081),
        "/admin/console": ("Prefix", "t-aetherbus-stats", 8081),
        "/admin/events": ("Prefix", "t-aetherbus-audit", 8083),
        "/admin/audit": ("Prefix", "t-aetherbus-audit", 8083),
    }, routes

    # What a request reaches, by the Ingress rule (longest Prefix match by
    # path element): the spec's endpoints, the proofs included.
    def route(path):
        best = None
        for p, (_, svc, _) in routes.items():
            if path == p or path.startswith(p.rstrip("/") + "/"):
                if best is None or len(p) > len(best[0]):
                    best = (p, svc)
        return best and best[1]
    assert route("/events/ingest") == "t-aetherbus-ingest"
    assert route("/events/schema") == "t-aetherbus-ingest"
    assert route("/bus/events") == "t-aetherbus-ingest"
    assert route("/admin/events/stats") == "t-aetherbus-stats"
    assert route("/admin/events") == "t-aetherbus-audit"
    assert route("/admin/events/evt_123") == "t-aetherbus-audit"
    assert route("/admin/events/evt_123/proof") == "t-aetherbus-audit"
    assert route("/admin/audit/consistency") == "t-aetherbus-audit"
    assert route("/admin/console") == "t-aetherbus-stats"
    assert route("/admin/eventsx") is None
    assert ("Ingress", "t-aetherbus") not in defaults()


@test
def network_policies():
    objs = sasl()
    for svc, port in (("ingest", 8080), ("stats", 8081), ("audit", 8083)):
        np = objs[("NetworkPolicy", f"t-aetherbus-{svc}")]["spec"]
        assert np["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == svc
        assert np["policyTypes"] == ["Ingress", "Egress"]
        ing = np["ingress"][0]
        sel = [f["namespaceSelector"]["matchLabels"] for f in ing["from"]]
        assert sel == [{"kubernetes.io/metadata.name": "ingress-nginx"},
                       {"kubernetes.io/metadata.name": "monitoring"}]
        assert ing["ports"] == [{"port": port, "protocol": "TCP"}]
        # the console's read-only GETs: stats may reach the others, and
        # nothing else is let in
        if svc == "stats":
            assert len(np["ingress"]) == 1
            ups = [e["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                   for e in np["egress"] if "podSelector" in e.get("to", [{}])[0]]
            assert ups == ["ingest", "audit"], ups  # sink is off in this file
        else:
            (ing2,) = np["ingress"][1:]
            assert ing2["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "stats"
            assert ing2["ports"] == [{"port": port, "protocol": "TCP"}]
        kafka = np["egress"][0]
        assert kafka["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
        assert kafka["ports"] == [{"port": 9096, "protocol": "TCP"}]
    sink = defaults()[("NetworkPolicy", "t-aetherbus-sink")]["spec"]["egress"]
    assert sink[1]["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert ("NetworkPolicy", "t-aetherbus-ingest") not in defaults("--set", "networkPolicy.enabled=false")


# ---- refusals --------------------------------------------------------------

@test
def refusals():
    def fails(msg, *args):
        r = subprocess.run([HELM, "template", "t", CHART, *args], capture_output=True, text=True)
        assert r.returncode != 0, args
        assert msg in r.stderr, (msg, r.stderr)
    fails("sink.autoscaling.maxReplicas must not exceed topics.partitions",
          "--set", "kafka.brokers=k:9092", "--set", "topics.partitions=4")
    fails("secrets.existingSecret is required",
          "--set", "kafka.brokers=k:9092", "--set", "secrets.create=false")
    fails("Additional property replicas is not allowed",
          "--set", "kafka.brokers=k:9092", "--set", "ingest.replicas=3")
    fails("rbacMode", "--set", "kafka.brokers=k:9092", "--set", "rbacMode=on")
    fails("existingSecretKeys", "-f", SASL, "--set", "secrets.existingSecretKeys[0]=TOKEN")
    # ingest refuses a shared token and a keys file together: so does the chart.
    fails("EVENT_INGEST_TOKEN and client-keys.json: set one, not both",
          "--set", "kafka.brokers=k:9092", "--set", "secrets.ingestToken=t",
          "--set", "secrets.clientKeys=[]")


def main():
    passed = failed = 0
    for fn in TESTS:
        try:
            fn()
        except Exception:  # noqa: BLE001 - the runner reports every failure
            failed += 1
            print(f"FAIL {fn.__name__}")
            traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {fn.__name__}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
