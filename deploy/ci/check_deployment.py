#!/usr/bin/env python3
"""The checks of scripts/check-deployment that no off-the-shelf tool makes (docs/deployment.md,
"How CI checks all this").

  rendered BIN DIR...   the objects the playbook rendered (one DIR per environment): each
                        validated against the Kubernetes API schema (kubernetes-validate,
                        strict) or, for OpenShift's own kinds, the schemas beside this file;
                        every reference between them resolved; and `BIN check-config` run in
                        every container of every Deployment, on the files and environment the
                        pod would have (a private mount namespace with an overlay on /etc)
  compose BIN           compose.yaml beyond its schema, the RabbitMQ definitions against the
                        production queue, and `BIN check-config` on the compose configuration
  build-context         the Containerfile and .dockerignore name every workspace member
  broker-park URL QUEUE PARKED
                        against a broker with the compose definitions loaded: a message whose
                        consumer dies holding it (SIGKILL) is handed out again until the queue's
                        x-delivery-limit is spent, then parked in PARKED with the reason
                        delivery_limit; URL is the service user's
  broker-count URL QUEUE
                        prints how many messages QUEUE holds ready

Prints nothing and exits 0 when all is well; otherwise prints every problem and exits 1.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
import uuid
from pathlib import Path

import jinja2
import jsonschema
import kubernetes_validate
import referencing
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
# OpenShift 4.16 (Kubernetes 1.29) to 4.20 (Kubernetes 1.33).
KUBERNETES_VERSIONS = ["1.29.0", "1.33.0"]
OPENSHIFT_KINDS = {
    ("route.openshift.io/v1", "Route"): "openshift-route.json",
    ("image.openshift.io/v1", "ImageStream"): "openshift-imagestream.json",
    ("build.openshift.io/v1", "BuildConfig"): "openshift-buildconfig.json",
    ("project.openshift.io/v1", "Project"): "openshift-project.json",
}
# The secrets the service must have in a deployed environment (none may be in dry-run).
DEPLOYED_SECRETS = [
    ("api", "admin_token"),
    ("testing_farm", "token"),
    ("testing_farm", "webhook_token"),
    ("distgit", "token"),
]

# The queue arguments Fedora's rabbit/queue role sets (community.rabbitmq.rabbitmq_queue) and
# compares on an existing queue, failing when they differ: the service's queue may have them only
# as the role gives them. The others (x-queue-type, x-delivery-limit) it neither sets nor compares.
ROLE_COMPARED_ARGUMENTS = ("x-message-ttl", "x-expires", "x-max-length", "x-dead-letter-exchange",
                           "x-dead-letter-routing-key", "x-max-priority")
# The sizing rule of the consumer's memory (docs/deployment.md, "Pods"; the constants are
# docs/operations.md's, "Memory").
MIB = 1024 * 1024
MEMORY_BASE = 64 * MIB
# The stack lapin's I/O thread grows parsing the deepest headers one AMQP frame can hold.
MEMORY_HEADER_STACK = 64 * MIB
BODY_COPIES_IN_MEMORY = 2
BATCHES_IN_MEMORY = 8
# Environments of the CI inventory, by the folder the playbook renders them into.
ENVIRONMENTS = {"staging": "os_control_stg", "production": "os_control"}

problems: list[str] = []


def problem(where: str, text: str) -> None:
    problems.append(f"{where}: {text}")


def ansible_vars(environment: str) -> dict:
    """vars/apps/fedora-ci-worker/common.yml as the playbook sees it in an environment of the CI
    inventory (its Jinja expressions resolved; those naming private variables are left as they
    are)."""
    inventory = ROOT / "ansible/ci/inventory/group_vars"
    values = yaml.safe_load((inventory / f"{ENVIRONMENTS[environment]}.yml").read_text())
    values.update(yaml.safe_load((ROOT / "ansible/vars/apps/fedora-ci-worker/common.yml").read_text()))
    jinja = jinja2.Environment(undefined=jinja2.DebugUndefined)

    def render(value):
        if isinstance(value, str):
            return jinja.from_string(value).render(values) if "{" in value else value
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [render(v) for v in value]
        return value

    for _ in range(5):
        values = {k: render(v) for k, v in values.items()}
    return values


def memory_bytes(quantity, compose: bool = False) -> int | None:
    """A Kubernetes memory quantity (256Mi, 1G, 300000000) or, with compose, a Compose byte value
    (320m, 1g, 1gb: binary units), in bytes; None when it is not one."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)", str(quantity).strip())
    if m is None:
        return None
    if compose:
        units = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20,
                 "g": 2**30, "gb": 2**30}
        unit = m.group(2).lower()
    else:
        units = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
                 "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
        unit = m.group(2)
    if unit not in units:
        return None
    return int(float(m.group(1)) * units[unit])


def check_memory_rule(where: str, limit, effective: dict, compose: bool = False) -> None:
    """The consumer's memory limit against the sizing rule, from its effective configuration."""
    try:
        prefetch = int(effective["bus"]["qos"]["prefetch_count"])
        body = int(effective["ingest"]["max_body_bytes"])
        batch = int(effective["ingest"]["batch_max_bytes"])
    except (KeyError, TypeError, ValueError) as error:
        problem(where, f"the effective configuration lacks {error} for the memory rule")
        return
    needed = (MEMORY_BASE + MEMORY_HEADER_STACK + BODY_COPIES_IN_MEMORY * prefetch * body
              + BATCHES_IN_MEMORY * batch)
    have = memory_bytes(limit, compose) if limit is not None else None
    if have is None:
        problem(where, f"the consumer has no memory limit this check understands ({limit!r})")
    elif have < needed:
        problem(where, f"the consumer's memory limit {limit} ({have // MIB} MiB) is below "
                       f"64 MiB + 64 MiB + {BODY_COPIES_IN_MEMORY} x {prefetch} (prefetch) x "
                       f"{body} (ingest.max_body_bytes) + "
                       f"{BATCHES_IN_MEMORY} x {batch} (ingest.batch_max_bytes) = "
                       f"{needed / MIB:.0f} MiB: lower the prefetch or the sizes, or raise the limit")


def check_quorum_queue(where: str, name: str, queue: dict) -> None:
    """A queue the broker can hold as a quorum queue with a delivery limit."""
    arguments = queue.get("arguments", {})
    if arguments.get("x-queue-type") != "quorum":
        problem(where, f"queue {name} is not a quorum queue (x-queue-type {arguments.get('x-queue-type')!r})")
    limit = arguments.get("x-delivery-limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit < 2**31:
        problem(where, f"queue {name}: x-delivery-limit {limit!r} is not a count of deliveries "
                       "(an integer from 1, sent as a signed 32-bit AMQP value)")
    if not queue.get("durable", True) or queue.get("auto_delete") or queue.get("exclusive"):
        problem(where, f"queue {name} must be durable, not auto-deleted, not exclusive (a quorum queue)")


def check_parking(where: str, queue: str, parked: str, queue_policy: dict, parked_policy: dict,
                  user: str) -> None:
    """The policies that park what the queue dead-letters."""
    if not parked.startswith(user) or not queue.startswith(user):
        problem(where, f"{queue} and {parked} must start with the bus user's name {user}")
    if queue_policy.get("dead-letter-exchange") != "" or \
            queue_policy.get("dead-letter-routing-key") != parked:
        problem(where, f"the policy of {queue} does not dead-letter into {parked} through the "
                       f"default exchange: {queue_policy}")
    for name, policy in ((queue, queue_policy), (parked, parked_policy)):
        if "expires" in policy:
            problem(where, f"the policy of {name} lets it expire")
    if any(k.startswith("dead-letter") for k in parked_policy):
        problem(where, f"the policy of {parked} dead-letters again")


# --- rendered objects -------------------------------------------------------------------------


def load_objects(directory: Path) -> list[tuple[str, dict]]:
    """Every object in the directory's YAML files, `kind: List` unpacked, with its file name."""
    objects = []
    for path in sorted(directory.glob("*.yml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is None:
                continue
            if document.get("kind") == "List":
                objects += [(path.name, item) for item in document.get("items", [])]
            else:
                objects.append((path.name, document))
    return objects


def openshift_validator(schema_file: str) -> jsonschema.Draft202012Validator:
    definitions_dir = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    definitions_dir /= f"v{KUBERNETES_VERSIONS[0]}-local-strict"
    definitions = json.loads((definitions_dir / "_definitions.json").read_text())
    registry = referencing.Registry().with_resource(
        definitions["$id"], referencing.Resource.from_contents(definitions)
    )
    schema = json.loads((SCHEMAS / schema_file).read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_schema(where: str, obj: dict) -> None:
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in OPENSHIFT_KINDS:
        validator = openshift_validator(OPENSHIFT_KINDS[key])
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in error.absolute_path)
            problem(where, f"{key[1]} {path}: {error.message}")
        return
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.absolute_path)
            problem(where, f"{key[1]} (Kubernetes {version}) {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problem(where, error.message)


def by_kind(objects: list[tuple[str, dict]], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for _, o in objects if o.get("kind") == kind}


def secret_data(secret: dict) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def volume_files(where: str, volume: dict, objects) -> dict[str, bytes] | None:
    """The files a volume shows in the pod (relative path -> content); None for emptyDir."""
    configmaps, secrets = by_kind(objects, "ConfigMap"), by_kind(objects, "Secret")

    def pick(kind: str, name: str, data: dict[str, bytes] | None, items, optional=False):
        if data is None:
            if not optional:
                problem(where, f"volume {volume['name']}: no {kind} {name} is deployed")
            return {}
        if not items:
            return dict(data)
        files = {}
        for item in items:
            if item["key"] not in data:
                problem(where, f"volume {volume['name']}: {kind} {name} has no key {item['key']}")
            else:
                files[item["path"]] = data[item["key"]]
        return files

    def configmap(name):
        cm = configmaps.get(name)
        return None if cm is None else {k: v.encode() for k, v in (cm.get("data") or {}).items()}

    def secret(name):
        s = secrets.get(name)
        return None if s is None else secret_data(s)

    if "emptyDir" in volume:
        return None
    if "configMap" in volume:
        source = volume["configMap"]
        return pick("ConfigMap", source["name"], configmap(source["name"]), source.get("items"),
                    source.get("optional", False))
    if "secret" in volume:
        source = volume["secret"]
        return pick("Secret", source["secretName"], secret(source["secretName"]),
                    source.get("items"), source.get("optional", False))
    if "projected" in volume:
        files = {}
        for source in volume["projected"]["sources"]:
            if "secret" in source:
                s = source["secret"]
                files.update(pick("Secret", s["name"], secret(s["name"]), s.get("items"),
                                  s.get("optional", False)))
            elif "configMap" in source:
                c = source["configMap"]
                files.update(pick("ConfigMap", c["name"], configmap(c["name"]), c.get("items"),
                                  c.get("optional", False)))
            else:
                problem(where, f"volume {volume['name']}: a projected source this check does not know")
        return files
    problem(where, f"volume {volume['name']}: a kind of volume this check does not know")
    return {}


def container_env(where: str, container: dict, objects) -> dict[str, str]:
    secrets, configmaps = by_kind(objects, "Secret"), by_kind(objects, "ConfigMap")
    env = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var.get("valueFrom", {})
        if "secretKeyRef" in ref:
            r = ref["secretKeyRef"]
            data = secret_data(secrets[r["name"]]) if r["name"] in secrets else None
        elif "configMapKeyRef" in ref:
            r = ref["configMapKeyRef"]
            cm = configmaps.get(r["name"])
            data = None if cm is None else {k: v.encode() for k, v in cm.get("data", {}).items()}
        else:
            problem(where, f"env {var['name']}: a source this check does not know")
            continue
        if data is not None and r["key"] in data:
            env[var["name"]] = data[r["key"]].decode()
        elif not r.get("optional", False):
            problem(where, f"env {var['name']}: {r['name']} has no key {r['key']}")
    return env


def run_check_config(where: str, binary: str, etc_files: dict[str, bytes], env: dict[str, str]):
    """`binary check-config` with these files over /etc and this environment; its output."""
    with tempfile.TemporaryDirectory(prefix="fci-check-config-") as tmp:
        upper, work = Path(tmp, "upper"), Path(tmp, "work")
        work.mkdir()
        for path, content in etc_files.items():
            target = upper / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        script = (f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc"
                  f' && exec "$0" check-config')
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, binary],
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True, text=True, timeout=60,
        )
    if result.returncode != 0:
        problem(where, f"check-config failed: {result.stderr.strip()}")
        return None
    try:
        return tomllib.loads(result.stdout)
    except tomllib.TOMLDecodeError as error:
        problem(where, f"check-config printed something that is not TOML: {error}")
        return None


def check_database_tls(where: str, env: dict[str, str], etc_files: dict[str, bytes]) -> None:
    """The database URL says how TLS is used, and a CA it verifies with is in the container."""
    url = env.get("FEDORA_CI__DATABASE__URL")
    if url is None:
        return
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    sslmode = query.get("sslmode", [None])[0]
    if sslmode is None:
        problem(where, "the database URL has no sslmode (sqlx would then check no certificate)")
    elif sslmode in ("verify-ca", "verify-full"):
        root = query.get("sslrootcert", [None])[0]
        if root is None:
            problem(where, f"sslmode={sslmode} without sslrootcert: the CA would be webpki's")
        elif not root.startswith("/etc/") or root[len("/etc/"):] not in etc_files:
            problem(where, f"sslrootcert {root} is not a file the container mounts")


def check_pod(where: str, deployment: dict, objects, binary: str) -> list[tuple[str, dict]]:
    """check-config in each container of the pod; the effective configurations, by container."""
    configurations = []
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in pod.get("initContainers", []) + pod["containers"]:
        here = f"{where} container {container['name']}"
        etc_files: dict[str, bytes] = {}
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"])
            if volume is None:
                problem(here, f"mounts {mount['name']}, which is not a volume of the pod")
                continue
            files = volume_files(here, volume, objects)
            if files is None:
                continue
            mount_path = mount["mountPath"]
            if not mount_path.startswith("/etc/"):
                problem(here, f"{mount_path}: this check simulates mounts under /etc only")
                continue
            if "subPath" in mount:
                files = {"": files.get(mount["subPath"], b"")}
            for name, content in files.items():
                etc_files[str(Path(mount_path[len("/etc/"):], name))] = content
        env = container_env(here, container, objects)
        check_database_tls(here, env, etc_files)
        effective = run_check_config(here, binary, etc_files, env)
        if effective is None:
            continue
        configurations.append((container["name"], effective))
        for section, key in DEPLOYED_SECRETS:
            if effective.get(section, {}).get(key) != "<redacted>":
                problem(here, f"{section}.{key} is not set: the service would run in dry-run")
        koji = effective.get("koji", {})
        if not (koji.get("auth") == "kerberos" and koji.get("principal") and koji.get("keytab")):
            problem(here, "koji has no principal and keytab: Koji would be in dry-run")
        bus = effective.get("bus", {})
        if not (bus.get("passive_declares") and bus.get("tls", {}).get("certfile")):
            problem(here, "the bus is not the restricted vhost with a client certificate")
        wants_dsn = "FEDORA_CI__SENTRY__DSN" in env
        if ("dsn" in effective.get("sentry", {})) != wants_dsn:
            problem(here, "sentry.dsn does not follow the Secret's sentry-dsn")
    return configurations


def check_references(where: str, objects) -> None:
    deployments = by_kind(objects, "Deployment")
    services, imagestreams = by_kind(objects, "Service"), by_kind(objects, "ImageStream")
    expected = {"fedora-ci-worker-api", "fedora-ci-worker-consumer", "fedora-ci-worker-jobs"}
    if set(deployments) != expected:
        problem(where, f"Deployments {sorted(deployments)}, expected {sorted(expected)}")
    for name, deployment in deployments.items():
        here = f"{where} Deployment {name}"
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        selector = spec["selector"]["matchLabels"]
        labels = spec["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in selector.items()):
            problem(here, "the selector does not match the pod's labels")
        if [c["name"] for c in pod.get("initContainers", [])] != ["migrate"] or \
                pod["initContainers"][0]["command"] != ["fedora-ci-worker", "migrate"]:
            problem(here, "the pod does not apply the migrations in an init container first")
        for container in pod["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe not in container:
                    problem(here, f"container {container['name']} has no {probe}")
        for container in pod.get("initContainers", []) + pod["containers"]:
            if not container.get("resources", {}).get("limits", {}).get("memory"):
                problem(here, f"container {container['name']} has no memory limit")
        triggers = json.loads(deployment["metadata"]["annotations"]["image.openshift.io/triggers"])
        named = set()
        for trigger in triggers:
            stream = trigger["from"]["name"].split(":")[0]
            if stream not in imagestreams:
                problem(here, f"image trigger on {trigger['from']['name']}: no such ImageStream")
            m = re.fullmatch(r'spec\.template\.spec\.(containers|initContainers)'
                             r'\[\?\(@\.name=="([^"]+)"\)\]\.image', trigger["fieldPath"])
            if m is None:
                problem(here, f"image trigger fieldPath {trigger['fieldPath']!r} is not understood")
                continue
            names = [c["name"] for c in pod.get(m.group(1), [])]
            if m.group(2) not in names:
                problem(here, f"image trigger on {m.group(1)} {m.group(2)}: no such container")
            named.add(m.group(2))
        unnamed = {c["name"] for c in pod.get("initContainers", []) + pod["containers"]} - named
        if unnamed:
            problem(here, f"no image trigger for {sorted(unnamed)}: they would keep an old image")
    consumer = deployments.get("fedora-ci-worker-consumer")
    if consumer and (consumer["spec"]["replicas"] != 1
                     or consumer["spec"]["strategy"]["type"] != "Recreate"):
        problem(where, "the consumer must be one replica with the Recreate strategy")
    roles = {"fedora-ci-worker-api": ["--api"], "fedora-ci-worker-consumer": ["--consumer", "--api"],
             "fedora-ci-worker-jobs": ["--jobs", "--api"]}
    for name, args in roles.items():
        if name in deployments:
            command = deployments[name]["spec"]["template"]["spec"]["containers"][0]["command"]
            if command != ["fedora-ci-worker", "run", *args]:
                problem(where, f"Deployment {name} runs {command}")
    for name, service in services.items():
        selector = service["spec"]["selector"]
        matched = [d for d in deployments.values()
                   if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v
                          for k, v in selector.items())]
        if [d["metadata"]["name"] for d in matched] != ["fedora-ci-worker-api"]:
            problem(where, f"Service {name} selects {[d['metadata']['name'] for d in matched]}, "
                           "not the api pods alone")
        for port in service["spec"]["ports"]:
            target = port.get("targetPort")
            for d in matched:
                ports = {p.get("name"): p["containerPort"]
                         for c in d["spec"]["template"]["spec"]["containers"]
                         for p in c.get("ports", [])}
                if target not in ports and target not in ports.values():
                    problem(where, f"Service {name} targets {target}, which the pods do not expose")
    for name, route in by_kind(objects, "Route").items():
        to = route["spec"]["to"]["name"]
        if to not in services:
            problem(where, f"Route {name} goes to Service {to}, which is not deployed")
        elif route["spec"]["port"]["targetPort"] not in [p.get("name") for p in services[to]["spec"]["ports"]]:
            problem(where, f"Route {name} names a port that Service {to} does not have")
    for name, build in by_kind(objects, "BuildConfig").items():
        output = build["spec"]["output"]["to"]["name"].split(":")[0]
        if output not in imagestreams:
            problem(where, f"BuildConfig {name} pushes to {output}, which is not an ImageStream")
        args = {a["name"]: a.get("value") for a in build["spec"]["strategy"]["dockerStrategy"].get("buildArgs", [])}
        if args.get("FEDORA_CI_GIT_REVISION") != build["spec"]["source"]["git"].get("ref"):
            problem(where, f"BuildConfig {name}: FEDORA_CI_GIT_REVISION is not the commit built")


def check_bus_setup(where: str, directory: Path, objects) -> None:
    """The queue and bindings the playbook creates are the ones the service checks and binds;
    the queue is the quorum queue of the variables, which rabbit/queue accepts; what it
    dead-letters is parked in a queue the playbook creates too."""
    if where not in ENVIRONMENTS:
        problem(where, f"not an environment of the CI inventory ({', '.join(ENVIRONMENTS)})")
        return
    values = ansible_vars(where)
    recorded = {}
    for path in sorted(directory.glob("rabbit-queue-*.json")):
        record = json.loads(path.read_text())
        recorded[record["queue"]] = record
    configmap = by_kind(objects, "ConfigMap").get("fedora-ci-worker-config")
    if configmap is None:
        problem(where, "no ConfigMap fedora-ci-worker-config")
        return
    fm = tomllib.loads(configmap["data"]["fedora-messaging.toml"])
    consumed = list(fm.get("queues", {}))
    bound_queues = [name for name, r in recorded.items() if r["routing_keys"]]
    if len(consumed) != 1 or consumed != bound_queues:
        problem(where, f"the service consumes {consumed}, the playbook creates and binds {bound_queues}")
        return
    name = consumed[0]
    queue, record = fm["queues"][name], recorded[name]
    bound = sorted(k for b in fm.get("bindings", []) if b.get("queue") == name
                   and b.get("exchange") == record["exchange"] for k in b["routing_keys"])
    if bound != sorted(record["routing_keys"]):
        problem(where, "the service's bindings differ from the ones the playbook makes")
    user = re.match(r"amqps://([^:@]+)", fm.get("amqp_url", ""))
    if user is None or user.group(1) != record["user"]:
        problem(where, f"the service connects as {user and user.group(1)}, the queue belongs to {record['user']}")
    if "%2Fpubsub" not in fm.get("amqp_url", "") or not fm.get("passive_declares"):
        problem(where, "the service does not use the restricted vhost /pubsub with passive declares")

    # The service expects the queue the broker has: the quorum queue of the variables, made once
    # by roles/rabbitmq_cluster/tasks/fedora-ci-worker.yml, which rabbit/queue then accepts.
    arguments = queue.get("arguments", {})
    check_quorum_queue(where, name, queue)
    if arguments != values["fedora_ci_worker_bus_queue_arguments"]:
        problem(where, f"the service expects the queue arguments {arguments}, the broker's queue has "
                       f"{values['fedora_ci_worker_bus_queue_arguments']} (fedora_ci_worker_bus_queue_arguments)")
    if queue.get("durable", True) != record["durable"] or queue.get("auto_delete", False) != record["auto_delete"]:
        problem(where, f"queue {name}: durable and auto_delete differ from what rabbit/queue makes")
    for key in ROLE_COMPARED_ARGUMENTS:
        if arguments.get(key) != record["arguments"].get(key):
            problem(where, f"queue {name}: {key} is {arguments.get(key)!r} for the service but "
                           f"{record['arguments'].get(key)!r} for rabbit/queue, which refuses an "
                           "existing queue whose value differs")

    parked = values["fedora_ci_worker_bus_parked_queue"]
    if parked not in recorded:
        problem(where, f"the playbook does not create the parked queue {parked}")
    elif recorded[parked]["routing_keys"] or not recorded[parked].get("thresholds"):
        problem(where, f"the parked queue {parked} must have no binding and an alert threshold")
    check_parking(where, name, parked, values["fedora_ci_worker_bus_queue_policy"],
                  values["fedora_ci_worker_bus_parked_queue_policy"], record["user"])


def check_secret_handling(where: str, directory: Path) -> None:
    """Secrets are rendered for their owner only, and every task that renders or applies one runs
    with no_log and without diff (security review L15)."""
    secret_files = set()
    for path in sorted(directory.glob("*.yml")):
        kinds = set()
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                kinds.add(document.get("kind"))
                kinds.update(i.get("kind") for i in document.get("items", []) if document.get("kind") == "List")
        if "Secret" in kinds:
            secret_files.add(path.name)
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                problem(where, f"{path.name} holds a Secret but is written with mode {mode:04o}")
    playbook = yaml.safe_load((ROOT / "ansible/playbooks/openshift-apps/fedora-ci-worker.yml").read_text())
    for play in playbook:
        entries = [(f"role {r.get('role')} ({r.get('secret_file_secret_name') or r.get('object_objectname')})", r)
                   for r in play.get("roles", []) if isinstance(r, dict)
                   and (r.get("role") == "openshift/secret-file"
                        or (r.get("role") == "openshift/object" and r.get("object_objectname") in secret_files))]
        entries += [(f"task {t.get('name')!r}", t) for t in play.get("tasks", [])
                    if any("password" in str(v) for v in t.values() if isinstance(v, dict))]
        for what, entry in entries:
            if entry.get("no_log") is not True or entry.get("diff") is not False:
                problem("the playbook", f"{what} renders or applies a secret without no_log: true and diff: false")


def cmd_rendered(binary: str, directories: list[str]) -> None:
    for directory in map(Path, directories):
        where = directory.name
        objects = load_objects(directory)
        if not objects:
            problem(where, "nothing was rendered")
            continue
        for file, obj in objects:
            validate_schema(f"{where}/{file}", obj)
        check_references(where, objects)
        check_bus_setup(where, directory, objects)
        check_secret_handling(where, directory)
        configurations = []
        for name, deployment in by_kind(objects, "Deployment").items():
            here = f"{where} Deployment {name}"
            pod = check_pod(here, deployment, objects, binary)
            configurations += [effective for _, effective in pod]
            if name == "fedora-ci-worker-consumer":
                for container in deployment["spec"]["template"]["spec"]["containers"]:
                    effective = dict(pod).get(container["name"])
                    if effective is not None:
                        limit = container.get("resources", {}).get("limits", {}).get("memory")
                        check_memory_rule(f"{here} container {container['name']}", limit, effective)
        # The broker lets the service's user publish only the topics the playbook allows.
        sent_topics = {json.loads(p.read_text()).get("sent_topics")
                       for p in directory.glob("rabbit-queue-*.json")}
        sent_topics = sent_topics.pop() if len(sent_topics) == 1 else None
        for effective in configurations:
            prefix = effective.get("gating", {}).get("topic_prefix")
            if prefix is None:
                continue
            for state in ("queued", "running", "complete", "error"):
                topic = f"{prefix}.koji-build.test.{state}"
                if not sent_topics or not re.match(sent_topics, topic):
                    problem(where, f"the service publishes {topic}, which its bus user may not")
                    break
            else:
                continue
            break


# --- compose ----------------------------------------------------------------------------------


def cmd_compose(binary: str) -> None:
    where = "compose.yaml"
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    roles = {"api": ["--api"], "consumer": ["--consumer", "--api"], "jobs": ["--jobs", "--api"]}
    for name, args in roles.items():
        service = services.get(name)
        if service is None or service.get("command") != ["fedora-ci-worker", "run", *args]:
            problem(where, f"service {name} should run fedora-ci-worker run {' '.join(args)}")
    if "replicas" in services.get("consumer", {}).get("deploy", {}) and \
            services["consumer"]["deploy"]["replicas"] != 1:
        problem(where, "the consumer must be one")
    images = {s.get("image") for n, s in services.items() if n not in ("postgres", "rabbitmq")}
    if len(images) != 1:
        problem(where, f"the service's containers use several images: {images}")
    for name, service in services.items():
        for port in service.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problem(where, f"service {name} publishes {port} beyond the loopback address")
        for dependency in service.get("depends_on", {}):
            if dependency not in services:
                problem(where, f"service {name} depends on {dependency}, which does not exist")
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./") and not (ROOT / source).exists():
                problem(where, f"service {name} mounts {source}, which does not exist")
        oneshot = service.get("restart") == "no"
        has_check = "healthcheck" in service and not service["healthcheck"].get("disable")
        if not oneshot and not has_check:
            problem(where, f"service {name} runs on without a health check")
    if "publish-examples" not in services or \
            "publish /examples/*.json" not in " ".join(services["publish-examples"].get("command", [])):
        problem(where, "no one-shot service publishing the example messages")
    for name in ("api", "consumer", "jobs", "publish-examples"):
        depends = services.get(name, {}).get("depends_on", {})
        if name != "publish-examples" and \
                depends.get("migrate", {}).get("condition") != "service_completed_successfully":
            problem(where, f"service {name} does not wait for the migrations")

    # The broker's definitions recreate the production queue, its bindings, the parked queue
    # and the policies, as the variables have them in production.
    where_definitions = "deploy/rabbitmq/definitions.json"
    definitions = json.loads((ROOT / where_definitions).read_text())
    production = ansible_vars("production")
    production_queue = production["fedora_ci_worker_bus_queue"]
    parked = production["fedora_ci_worker_bus_parked_queue"]
    queues = {q["name"]: q for q in definitions["queues"] if q.get("vhost") == "/pubsub"}
    if sorted(queues) != sorted([production_queue, parked]):
        problem(where_definitions, f"queues {sorted(queues)}, production has {production_queue} and {parked}")
    if production_queue in queues:
        queue = queues[production_queue]
        check_quorum_queue(where_definitions, production_queue, queue)
        if queue.get("arguments") != production["fedora_ci_worker_bus_queue_arguments"] or \
                queue.get("type", "quorum") != "quorum":
            problem(where_definitions, f"{production_queue} has the arguments {queue.get('arguments')}, "
                                       f"production {production['fedora_ci_worker_bus_queue_arguments']}")
    if parked in queues and not queues[parked].get("durable"):
        problem(where_definitions, f"{parked} is not durable")
    policies = {p["name"]: p for p in definitions["policies"] if p.get("vhost") == "/pubsub"}
    for queue_name, variable in ((production_queue, "fedora_ci_worker_bus_queue_policy"),
                                 (parked, "fedora_ci_worker_bus_parked_queue_policy")):
        wanted = {"name": queue_name, "vhost": "/pubsub", "pattern": "^" + queue_name.replace(".", "\\.") + "$",
                  "apply-to": "queues", "priority": 1, "definition": production[variable]}
        if policies.get(queue_name) != wanted:
            problem(where_definitions, f"the policy of {queue_name} is {policies.get(queue_name)}, "
                                       f"production's is {wanted}")
    user = next((p["user"] for p in definitions["permissions"] if p["configure"] == "^$"), "")
    check_parking(where_definitions, production_queue, parked,
                  production["fedora_ci_worker_bus_queue_policy"],
                  production["fedora_ci_worker_bus_parked_queue_policy"], user)
    bound = sorted(b["routing_key"] for b in definitions["bindings"]
                   if b["source"] == "amq.topic" and b["destination"] == production_queue)
    if bound != sorted(production["fedora_ci_worker_bus_routing_keys"]):
        problem(where_definitions, "the bindings differ from production's")
    if any(b["destination"] == parked for b in definitions["bindings"]):
        problem(where_definitions, f"{parked} is bound: it must get only what is dead-lettered")
    fm = tomllib.loads((ROOT / "deploy/compose/fedora-messaging.toml").read_text())
    fm_bound = sorted(k for b in fm["bindings"] for k in b["routing_keys"])
    fm_queue = fm["queues"].get(production_queue, {})
    if list(fm["queues"]) != [production_queue] or fm_bound != bound or not fm.get("passive_declares"):
        problem("deploy/compose/fedora-messaging.toml", "does not match definitions.json")
    elif fm_queue.get("arguments") != queues.get(production_queue, {}).get("arguments") or \
            fm_queue.get("durable", True) is not True or fm_queue.get("auto_delete") or \
            fm_queue.get("exclusive"):
        problem("deploy/compose/fedora-messaging.toml",
                f"queue {production_queue} is not declared as definitions.json has it (a declare "
                "that is not passive would fail with PRECONDITION_FAILED)")

    # check-config on the configuration the compose services get.
    consumer = services.get("consumer", {})
    etc_files = {}
    for volume in consumer.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if not target.startswith("/etc/"):
            continue
        source_path = ROOT / source
        files = source_path.rglob("*") if source_path.is_dir() else [source_path]
        for f in files:
            if f.is_file():
                relative = f.relative_to(source_path) if source_path.is_dir() else Path()
                etc_files[str(Path(target[len("/etc/"):], relative))] = f.read_bytes()
    env = {k: str(v) for k, v in consumer.get("environment", {}).items()}
    effective = run_check_config(f"{where} consumer", binary, etc_files, env)
    if effective is not None and effective.get("bus", {}).get("passive_declares") is not True:
        problem(where, "the compose configuration does not use passive declares like production")
    if effective is not None:
        check_memory_rule(f"{where} consumer", consumer.get("mem_limit"), effective, compose=True)


# --- the broker's safety net -------------------------------------------------------------------


def cmd_broker_park(url: str, queue: str, parked: str) -> None:
    """Publish one message to amq.topic (a routing key the queue is bound to), then consume it
    again and again in a process killed as soon as it holds it, as a consumer that crashes on
    the message would be; the broker must hand it out x-delivery-limit more times, then park it."""
    import pika

    def counts() -> tuple[int, int]:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = connection.channel()
            return tuple(channel.queue_declare(q, passive=True).method.message_count
                         for q in (queue, parked))
        finally:
            connection.close()

    where = "the broker's delivery limit"
    definitions = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
    limit = next(q["arguments"]["x-delivery-limit"] for q in definitions["queues"] if q["name"] == queue)
    routing_key = next(b["routing_key"] for b in definitions["bindings"] if b["destination"] == queue)
    if counts() != (0, 0):
        problem(where, f"{queue} or {parked} is not empty to begin with")
        return
    message_id = f"ci-poison-{uuid.uuid4()}"
    connection = pika.BlockingConnection(pika.URLParameters(url))
    connection.channel().basic_publish(
        "amq.topic", routing_key.replace("*", "prod").replace("#", "x"), b"{}",
        pika.BasicProperties(message_id=message_id, delivery_mode=2))
    connection.close()
    for delivery in range(1, limit + 2):
        child = subprocess.Popen([sys.executable, __file__, "broker-park-consumer", url, queue],
                                 stdout=subprocess.PIPE, text=True)
        got = child.stdout.readline().strip()
        child.wait(timeout=30)
        if got != message_id:
            problem(where, f"delivery {delivery}: the consumer got {got!r}, not {message_id}")
            return
        for _ in range(200):
            state = counts()
            if sum(state) == 1:
                break
            time.sleep(0.05)
        if state == (0, 1) and delivery <= limit:
            problem(where, f"parked after {delivery} deliveries; x-delivery-limit is {limit}")
            return
        if state != (1, 0) and delivery <= limit:
            problem(where, f"after delivery {delivery}: {state} messages in ({queue}, {parked})")
            return
    if state != (0, 1):
        problem(where, f"{limit + 1} deliveries that killed their consumer, and the message is not "
                       f"parked: {state} messages in ({queue}, {parked})")
        return
    connection = pika.BlockingConnection(pika.URLParameters(url))
    _, properties, _ = connection.channel().basic_get(parked, auto_ack=True)
    connection.close()
    headers = properties.headers or {}
    if properties.message_id != message_id or headers.get("x-first-death-reason") != "delivery_limit" \
            or headers.get("x-first-death-queue") != queue:
        problem(where, f"{parked} holds {properties.message_id} with {headers}, not {message_id} "
                       f"dead-lettered by {queue} for its delivery limit")


def cmd_broker_count(url: str, queue: str) -> None:
    """How many messages the queue holds ready, as the broker answers a passive declare (a
    quorum queue's count in `rabbitmqctl list_queues` lags by seconds)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    print(connection.channel().queue_declare(queue, passive=True).method.message_count)
    connection.close()


def cmd_broker_park_consumer(url: str, queue: str) -> None:
    """Take one delivery, say which, and die without acknowledging it."""
    import pika

    channel = pika.BlockingConnection(pika.URLParameters(url)).channel()
    channel.basic_qos(prefetch_count=1)
    for _, properties, _ in channel.consume(queue, auto_ack=False):
        print(properties.message_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


# --- build context ----------------------------------------------------------------------------


def cmd_build_context() -> None:
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    containerfile = (ROOT / "Containerfile").read_text()
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    for member in members:
        if f"COPY {member}/Cargo.toml {member}/" not in containerfile:
            problem("Containerfile", f"the dependency layer does not copy {member}/Cargo.toml")
        if f"COPY {member} {member}" not in containerfile:
            problem("Containerfile", f"the build does not copy {member}/")
        if f"!{member}" not in dockerignore:
            problem(".dockerignore", f"{member}/ is left out of the build context")
    for needed in (".sqlx", "migrations", "Cargo.lock"):
        if f"!{needed}" not in dockerignore:
            problem(".dockerignore", f"{needed} is left out of the build context")


def main() -> int:
    command, *args = sys.argv[1:] or ["help"]
    if command == "rendered" and len(args) >= 2:
        cmd_rendered(args[0], args[1:])
    elif command == "compose" and len(args) == 1:
        cmd_compose(args[0])
    elif command == "build-context" and not args:
        cmd_build_context()
    elif command == "broker-park" and len(args) == 3:
        cmd_broker_park(*args)
    elif command == "broker-count" and len(args) == 2:
        cmd_broker_count(*args)
        return 0
    elif command == "broker-park-consumer" and len(args) == 2:
        cmd_broker_park_consumer(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for text in problems:
        print(text, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
