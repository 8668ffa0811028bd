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

Prints nothing and exits 0 when all is well; otherwise prints every problem and exits 1.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

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

problems: list[str] = []


def problem(where: str, text: str) -> None:
    problems.append(f"{where}: {text}")


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


def check_pod(where: str, deployment: dict, objects, binary: str) -> list[dict]:
    """check-config in each container of the pod; the effective configurations."""
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
        effective = run_check_config(here, binary, etc_files, env)
        if effective is None:
            continue
        configurations.append(effective)
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
    """The queue and bindings the playbook creates are the ones the service checks and binds."""
    queue = json.loads((directory / "rabbit-queue.json").read_text())
    configmap = by_kind(objects, "ConfigMap").get("fedora-ci-worker-config")
    if configmap is None:
        problem(where, "no ConfigMap fedora-ci-worker-config")
        return
    fm = tomllib.loads(configmap["data"]["fedora-messaging.toml"])
    if list(fm.get("queues", {})) != [queue["queue"]]:
        problem(where, f"the service consumes {list(fm.get('queues', {}))}, the playbook creates {queue['queue']}")
    bound = sorted(k for b in fm.get("bindings", []) if b.get("queue") == queue["queue"]
                   and b.get("exchange") == queue["exchange"] for k in b["routing_keys"])
    if bound != sorted(queue["routing_keys"]):
        problem(where, "the service's bindings differ from the ones the playbook makes")
    user = re.match(r"amqps://([^:@]+)", fm.get("amqp_url", ""))
    if user is None or user.group(1) != queue["user"]:
        problem(where, f"the service connects as {user and user.group(1)}, the queue belongs to {queue['user']}")
    if "%2Fpubsub" not in fm.get("amqp_url", "") or not fm.get("passive_declares"):
        problem(where, "the service does not use the restricted vhost /pubsub with passive declares")


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
        configurations = []
        for name, deployment in by_kind(objects, "Deployment").items():
            configurations += check_pod(f"{where} Deployment {name}", deployment, objects, binary)
        # The broker lets the service's user publish only the topics the playbook allows.
        sent_topics = json.loads((directory / "rabbit-queue.json").read_text()).get("sent_topics")
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

    # The broker's definitions recreate the production queue and its bindings.
    definitions = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
    production = yaml.safe_load((ROOT / "ansible/vars/apps/fedora-ci-worker/common.yml").read_text())
    production_queue = production["fedora_ci_worker_bus_queue"].replace("{{ env_suffix }}", "")
    queues = [q["name"] for q in definitions["queues"]]
    if queues != [production_queue]:
        problem("definitions.json", f"queues {queues}, production has {production_queue}")
    bound = sorted(b["routing_key"] for b in definitions["bindings"]
                   if b["source"] == "amq.topic" and b["destination"] == production_queue)
    if bound != sorted(production["fedora_ci_worker_bus_routing_keys"]):
        problem("definitions.json", "the bindings differ from production's")
    fm = tomllib.loads((ROOT / "deploy/compose/fedora-messaging.toml").read_text())
    fm_bound = sorted(k for b in fm["bindings"] for k in b["routing_keys"])
    if list(fm["queues"]) != queues or fm_bound != bound or not fm.get("passive_declares"):
        problem("deploy/compose/fedora-messaging.toml", "does not match definitions.json")

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
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for text in problems:
        print(text, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
