"""The Kubernetes manifests: valid offline, secure, and scaling every queue that has work.

Core objects are validated against the Kubernetes API's own schemas (kubernetes-validate,
strict: an unknown field fails); KEDA's ScaledObjects against the CRD schema kept in
deploy/k8s/schemas, strictly too. A kind neither knows fails the test rather than passing
unchecked.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from celeryconfig import SCREEN_QUEUE_PREFIX, SYNC_QUEUE, is_amqp, queue_names
from core.settings import Settings
from core.stream.shards import ShardLayout
from tasks.flower import flower_argv
from tasks.worker import beat_argv, worker_command, worker_launcher_argv
from tests.factories import ROOT, module_form

K8S = ROOT / "deploy" / "k8s"
RABBITMQ_OVERLAY = ROOT / "deploy" / "k8s-rabbitmq"
CLUSTER_OVERLAY = ROOT / "deploy" / "k8s-cluster"
KUBERNETES_VERSION = "1.30.0"
KEDA_SCHEMA = K8S / "schemas" / "keda-scaledobject-crd.yaml"
# The metadata each KEDA scaler reads (its reference's parameter lists); a typo in one is
# otherwise silently ignored by KEDA, since the CRD types metadata as a string map.
SCALER_METADATA = {
    "redis": {
        "address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv",
        "username", "usernameFromEnv", "passwordFromEnv", "listName", "listLength",
        "activationListLength", "databaseIndex", "enableTLS", "unsafeSsl",
    },
    "redis-streams": {
        "address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv",
        "username", "usernameFromEnv", "passwordFromEnv", "stream", "consumerGroup",
        "pendingEntriesCount", "streamLength", "lagCount", "activationLagCount",
        "databaseIndex", "enableTLS", "unsafeSsl",
    },
    "redis-cluster-streams": {
        "addresses", "hosts", "ports", "usernameFromEnv", "passwordFromEnv", "stream",
        "consumerGroup", "pendingEntriesCount", "streamLength", "lagCount", "activationLagCount",
        "enableTLS", "unsafeSsl",
    },
    "rabbitmq": {
        "host", "hostFromEnv", "usernameFromEnv", "passwordFromEnv", "protocol", "queueName",
        "mode", "value", "activationValue", "vhostName", "useRegex", "excludeUnacknowledged",
        "pageSize", "operation", "timeout", "unsafeSsl",
    },
}  # fmt: skip
# Variables in the ConfigMap that are not Settings fields: the libraries' own.
LIBRARY_VARIABLES = {"HF_HUB_OFFLINE", "HF_HOME", "XDG_CACHE_HOME", "REDIS_ADDRESS"}


def manifests() -> list[dict[str, Any]]:
    """Every object the kustomization applies, in order."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    objects = []
    for resource in kustomization["resources"]:
        objects += [doc for doc in yaml.safe_load_all((K8S / resource).read_text()) if doc]
    return objects


@cache
def kustomized(directory: Path) -> list[dict[str, Any]]:
    """Every object a kustomization applies, as kustomize (kubectl's) builds it offline."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed: run `make test` (apt-get install it)")
    built = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def rabbitmq_manifests() -> list[dict[str, Any]]:
    """Every object the RabbitMQ overlay applies."""
    return kustomized(RABBITMQ_OVERLAY)


def variant_manifests(variant: str) -> list[dict[str, Any]]:
    """Every object of one variant: the base (redis), or the rabbitmq or cluster overlay."""
    overlays = {"rabbitmq": RABBITMQ_OVERLAY, "cluster": CLUSTER_OVERLAY}
    return manifests() if variant == "redis" else kustomized(overlays[variant])


def of_kind(kind: str, objects: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Objects of one kind by name (of the base kustomization unless `objects` are given)."""
    found = manifests() if objects is None else objects
    return {o["metadata"]["name"]: o for o in found if o["kind"] == kind}


def pod_specs() -> dict[str, dict[str, Any]]:
    """The pod template spec of each Deployment."""
    return {name: d["spec"]["template"]["spec"] for name, d in of_kind("Deployment").items()}


def deployed_settings() -> Settings:
    """The Settings the pods read from the ConfigMap."""
    data = of_kind("ConfigMap")["screening-config"]["data"]
    fields = {k.lower(): v for k, v in data.items() if k.lower() in Settings.model_fields}
    return Settings(**fields)


def consumed_queues(command: list[str]) -> set[str]:
    """The queues a container's `python -m tasks.worker ...` consumes, per the launcher."""
    launcher = worker_launcher_argv([], python="python")
    if command[: len(launcher)] != launcher:
        return set()
    args = command[len(launcher) :]
    gpu = int(args[args.index("--gpu") + 1]) if "--gpu" in args else None
    role = "gpu" if gpu is not None else "cpu" if "--cpu" in args else "pipeline"
    celery, _ = worker_command(role, gpu, 1, "INFO")
    return set(celery[celery.index("--queues") + 1].split(","))


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI schema that rejects properties it does not name."""
    schema = copy.deepcopy(schema)

    def tighten(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                tighten(value)
        elif isinstance(node, list):
            for value in node:
                tighten(value)

    tighten(schema)
    return schema


def keda_validator() -> jsonschema.protocols.Validator:
    """A validator of ScaledObjects from the CRD's openAPIV3Schema."""
    crd = yaml.safe_load(KEDA_SCHEMA.read_text())
    [version] = crd["spec"]["versions"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def test_the_kustomization_lists_every_manifest_and_nothing_missing() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert kustomization["namespace"] == "screening"


@pytest.mark.parametrize("variant", ["redis", "rabbitmq", "cluster"])
def test_every_object_validates_strictly_against_its_schema(variant: str) -> None:
    validator = keda_validator()
    for obj in variant_manifests(variant):
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"] == "keda.sh/v1alpha1":
            assert obj["kind"] == "ScaledObject", f"{name}: no schema for this KEDA kind"
            errors = [e.message for e in validator.iter_errors(obj)]
            assert errors == [], name
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {exc.message} at {list(exc.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{name}: no Kubernetes schema for this kind")


def test_the_kept_scaledobject_schema_is_a_valid_crd_and_rejects_unknown_fields() -> None:
    crd = yaml.safe_load(KEDA_SCHEMA.read_text())
    kubernetes_validate.validate(crd, KUBERNETES_VERSION, strict=True)
    scaled = of_kind("ScaledObject")["worker-cpu"]
    typo = copy.deepcopy(scaled)
    typo["spec"]["maxReplicas"] = 5  # a field of HPAs, not of ScaledObjects
    assert list(keda_validator().iter_errors(typo))


@pytest.mark.parametrize("variant", ["redis", "rabbitmq", "cluster"])
def test_every_trigger_uses_only_metadata_its_scaler_reads(variant: str) -> None:
    objects = variant_manifests(variant)
    for name, scaled in of_kind("ScaledObject", objects).items():
        for trigger in scaled["spec"]["triggers"]:
            known = SCALER_METADATA[trigger["type"]]
            assert set(trigger["metadata"]) <= known, (name, set(trigger["metadata"]) - known)


def test_every_screening_queue_has_a_deployment_consuming_it_and_a_scaled_object_on_it() -> None:
    settings = deployed_settings()
    consumers: dict[str, set[str]] = {}
    for name, spec in pod_specs().items():
        for container in spec["containers"]:
            for queue in consumed_queues(container.get("command", [])):
                consumers.setdefault(queue, set()).add(name)
    watched: dict[str, set[str]] = {}
    for scaled in of_kind("ScaledObject").values():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        for trigger in scaled["spec"]["triggers"]:
            if trigger["type"] == "redis":
                watched.setdefault(trigger["metadata"]["listName"], set()).add(target)
    queues = [q for q in queue_names(settings.gpu_queues) if q.startswith(SCREEN_QUEUE_PREFIX)]
    assert queues, "no screening queue is configured"
    for queue in queues:
        assert consumers.get(queue), f"no Deployment consumes {queue}"
        assert watched.get(queue, set()) & consumers[queue], f"nothing scales {queue}'s consumers"
    # And nothing scales on a queue nobody consumes.
    assert set(watched) <= set(consumers)


def test_the_rabbitmq_variant_brokers_on_rabbitmq_and_scales_every_queue_on_its_depth() -> None:
    objects = rabbitmq_manifests()
    secret = of_kind("Secret", objects)["screening-secrets"]["stringData"]
    broker = Settings(celery_broker_url=secret["CELERY_BROKER_URL"]).celery_broker_url
    assert broker is not None and is_amqp(broker)
    assert secret["REDIS_URL"].startswith("redis://")  # the streams stay on Redis
    base = {name: s["spec"]["triggers"] for name, s in of_kind("ScaledObject").items()}
    for name, scaled in of_kind("ScaledObject", objects).items():
        triggers = scaled["spec"]["triggers"]
        if name == "pipeline":  # it scales on the stream's lag, not on a queue
            assert triggers == base[name]
            continue
        assert {t["type"] for t in triggers} == {"rabbitmq"}, name
        # The same queues at the same depths as on Redis, read from the broker's queues.
        assert {t["metadata"]["queueName"]: t["metadata"]["value"] for t in triggers} == {
            t["metadata"]["listName"]: t["metadata"]["listLength"] for t in base[name]
        }, name
        for trigger in triggers:
            assert trigger["metadata"]["hostFromEnv"] == "CELERY_BROKER_URL"
            assert trigger["metadata"]["mode"] == "QueueLength"
        assert SYNC_QUEUE in {t["metadata"]["queueName"] for t in triggers}
    # Everything else is the base's, unchanged.
    rest = [o for o in objects if o["kind"] not in ("Secret", "ScaledObject")]
    assert rest == [o for o in kustomized(K8S) if o["kind"] not in ("Secret", "ScaledObject")]
    [base_secret] = [o for o in kustomized(K8S) if o["kind"] == "Secret"]
    assert secret == base_secret["stringData"] | {"CELERY_BROKER_URL": broker}


def test_the_cluster_variant_shards_the_streams_and_scales_the_pipeline_on_every_shard() -> None:
    objects = variant_manifests("cluster")
    data = of_kind("ConfigMap", objects)["screening-config"]["data"]
    fields = {k.lower(): v for k, v in data.items() if k.lower() in Settings.model_fields}
    settings = Settings(**fields)
    assert len(settings.redis_cluster_nodes) == 3 and settings.ingest_shards == 8
    layout = ShardLayout.from_settings(settings)
    scaled = of_kind("ScaledObject", objects)["pipeline"]
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"redis-cluster-streams"}
    # One trigger per shard, on the stream and group the batcher reads, summed into one target.
    assert [t["metadata"]["stream"] for t in triggers] == [
        keys.ingest_stream for keys in layout.all_keys()
    ]
    assert {t["metadata"]["consumerGroup"] for t in triggers} == {settings.consumer_group}
    for trigger in triggers:
        assert trigger["metadata"]["addresses"] in settings.redis_cluster_nodes
        assert trigger["metadata"]["passwordFromEnv"] == "REDIS_CLUSTER_PASSWORD"
    modifiers = scaled["spec"]["advanced"]["scalingModifiers"]
    assert sorted(modifiers["formula"].split(" + ")) == sorted(t["name"] for t in triggers)
    [base] = of_kind("ScaledObject")["pipeline"]["spec"]["triggers"]
    assert modifiers["target"] == base["metadata"]["lagCount"]
    secret = of_kind("Secret", objects)["screening-secrets"]["stringData"]
    assert "REDIS_CLUSTER_PASSWORD" in secret and secret["REDIS_URL"].startswith("redis://")
    assert is_amqp(secret["CELERY_BROKER_URL"])  # kombu cannot broker on a Redis Cluster
    # Everything else is the RabbitMQ variant's, unchanged.
    changed = {("ConfigMap", "screening-config"), ("Secret", "screening-secrets")}
    changed.add(("ScaledObject", "pipeline"))

    def rest(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [o for o in found if (o["kind"], o["metadata"]["name"]) not in changed]

    assert rest(objects) == rest(rabbitmq_manifests())


def test_queue_triggers_ask_for_workers_before_the_batcher_holds_batches_back() -> None:
    settings = deployed_settings()
    for scaled in of_kind("ScaledObject").values():
        assert scaled["spec"]["minReplicaCount"] >= 1  # a queue needs a live worker to get work
        for trigger in scaled["spec"]["triggers"]:
            meta = trigger["metadata"]
            if trigger["type"] == "redis" and meta["listName"] != "screen.sync":
                assert int(meta["listLength"]) < settings.queue_batches_per_worker


def test_the_pipeline_scales_on_the_ingest_stream_lag_of_its_consumer_group() -> None:
    settings = deployed_settings()
    scaled = of_kind("ScaledObject")["pipeline"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "pipeline"
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    meta = trigger["metadata"]
    assert meta["stream"] == settings.ingest_stream
    assert meta["consumerGroup"] == settings.consumer_group
    assert int(meta["lagCount"]) > 0
    pipeline = pod_specs()["pipeline"]["containers"][0]
    assert consumed_queues(pipeline["command"]) == {"pipeline"}


def test_each_container_runs_the_command_line_the_python_source_spells() -> None:
    commands = {
        name: module_form(container["command"])
        for name, spec in pod_specs().items()
        for container in spec["containers"]
        if "command" in container
    }
    assert commands == {
        "beat": beat_argv("/app/var/celerybeat-schedule", python="python"),
        "flower": flower_argv(["--address=0.0.0.0", "--port=5555"], python="python"),
        "pipeline": worker_launcher_argv(["--pipeline"], python="python"),
        "worker-cpu": worker_launcher_argv(["--cpu", "--concurrency", "2"], python="python"),
        "worker-gpu": worker_launcher_argv(["--gpu", "0"], python="python"),
    }  # web runs its image's command, which test_compose checks against the source


def test_web_scales_on_cpu_and_beat_runs_exactly_once() -> None:
    [hpa] = of_kind("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
    }
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    beat = of_kind("Deployment")["beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    scaled_targets = {s["spec"]["scaleTargetRef"]["name"] for s in of_kind("ScaledObject").values()}
    assert "beat" not in scaled_targets and hpa["spec"]["scaleTargetRef"]["name"] != "beat"


def test_every_pod_runs_as_non_root_with_probes_requests_and_limits() -> None:
    for name, spec in pod_specs().items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
        for container in spec["containers"]:
            assert "livenessProbe" in container, name


def test_the_pipeline_migrates_the_archive_schema_before_its_archiver_starts() -> None:
    [init] = pod_specs()["pipeline"]["initContainers"]
    assert init["command"] == ["python", "scripts/migrate.py"]
    assert {source["secretRef"]["name"] for source in init["envFrom"] if "secretRef" in source}


def test_gpu_workers_take_one_gpu_each_and_cpu_workers_none() -> None:
    specs = pod_specs()
    for container in specs["worker-gpu"]["containers"]:
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    for name, spec in specs.items():
        if name != "worker-gpu":
            for container in spec["containers"]:
                assert "nvidia.com/gpu" not in container["resources"]["limits"], name


def test_config_comes_from_the_configmap_and_secrets_from_the_secret() -> None:
    secret_keys = set(of_kind("Secret")["screening-secrets"]["stringData"])
    assert {"REDIS_URL", "DATABASE_URL", "API_KEYS", "FLOWER_BASIC_AUTH"} <= secret_keys
    config = of_kind("ConfigMap")["screening-config"]["data"]
    settings = {name.upper() for name in Settings.model_fields}
    unknown = {
        key
        for key in config
        if key not in settings and not key.startswith("OTEL_") and key not in LIBRARY_VARIABLES
    }
    assert unknown == set()
    assert not secret_keys & set(config)  # a value lives in one place
    for name, spec in pod_specs().items():
        for container in spec.get("initContainers", []) + spec["containers"]:
            sources = {next(iter(ref.values()))["name"] for ref in container.get("envFrom", [])}
            assert sources == {"screening-config", "screening-secrets"}, name
            for variable in container.get("env", []):
                assert variable["name"] not in secret_keys, (name, variable["name"])


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_no_manifest_hard_codes_a_flower_login_on_a_command_line(path: Path) -> None:
    assert "--basic-auth" not in path.read_text()
