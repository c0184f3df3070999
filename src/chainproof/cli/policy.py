"""``chainproof policy …``: check policy files, store them on a server, and ask the judge.

``validate`` and offline ``evaluate`` run here without a server; ``set``, ``get`` and online
``evaluate`` call the REST API. Either way the decision text is
:meth:`chainproof.policy.Decision.explain`'s, so a refusal reads the same everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from chainproof.cli.inputs import load_document, load_documents
from chainproof.cli.offline import OfflineInputs, evaluate_offline, is_kritis, split_grafeas_dump
from chainproof.cli.options import JsonOpt, ProjectOpt, Server, connected, project_option
from chainproof.cli.output import EXIT_USAGE, check_failed, errors, note, out, print_json, table
from chainproof.domain.names import validate_project_id
from chainproof.errors import InvalidArgument
from chainproof.policy import AdmissionRequest, parse_attestor, parse_kritis_resources, parse_policy
from chainproof.services.common import utc_now

app = typer.Typer(
    help="Validate, store, fetch and evaluate Binary Authorization policies (and Kritis files).",
    no_args_is_help=True,
)

PolicyFileArg = Annotated[Path, typer.Argument(metavar="FILE", help="Policy file, YAML or JSON.")]


def _document_kind(doc: Any) -> str:
    if (
        isinstance(doc, dict)
        and "userOwnedGrafeasNote" in doc
        and "defaultAdmissionRule" not in doc
    ):
        return "attestor"
    return "policy"


def check_file(path: Path) -> str:
    """Parse ``path`` fully; return what it holds, or raise InvalidArgument with every problem."""
    docs = load_documents(path, "policy file")
    if is_kritis(docs):
        resources = parse_kritis_resources(docs)
        kinds: dict[str, int] = {}
        for r in resources:
            kinds[type(r).__name__] = kinds.get(type(r).__name__, 0) + 1
        return "Kritis resources: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    if len(docs) != 1:
        raise InvalidArgument(
            f"{path} holds {len(docs)} YAML documents: a Binary Authorization policy is one "
            "document (several are only read as Kritis resources, each with a kind)"
        )
    doc = docs[0]
    if _document_kind(doc) == "attestor":
        attestor = parse_attestor(doc)
        return f"attestor {attestor.name or '(unnamed)'} with {len(attestor.public_keys)} key(s)"
    policy = parse_policy(doc)
    return (
        "Binary Authorization policy"
        + (f" {policy.name}" if policy.name else "")
        + f", default rule {policy.default_admission_rule.evaluation_mode.value}"
    )


@app.command("validate")
def validate(file: PolicyFileArg, as_json: JsonOpt = False) -> None:
    """Check a policy file offline: a Binary Authorization policy, an attestor, or Kritis
    resources (ImageSecurityPolicy, GenericAttestationPolicy, AttestationAuthority).

    Prints OK, or every problem with the path of the bad field (exit 2).
    """
    with errors():
        try:
            summary = check_file(file)
        except InvalidArgument as exc:
            if not as_json:
                raise
            print_json(
                {
                    "valid": False,
                    "file": str(file),
                    "error": exc.message,
                    "problems": list(exc.details),
                }
            )
            raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        print_json({"valid": True, "file": str(file), "summary": summary})
    else:
        note(f"OK: {file}: {summary}", style="green")


@app.command("set")
@connected
def set_(
    server: Server,
    file: PolicyFileArg,
    project: ProjectOpt,
    as_json: JsonOpt = False,
) -> None:
    """Store a project's policy (PUT /v1/projects/P/policy), checked here first."""
    with errors():
        doc = load_document(file, "policy file")
        if is_kritis([doc]):
            raise InvalidArgument(
                f"{file} holds a Kritis resource: the server stores Binary Authorization "
                "policies; evaluate Kritis files offline with `chainproof policy evaluate "
                "--policy FILE`"
            )
        parse_policy(doc)
        if isinstance(doc, dict):
            # The server names the policy after the project; a name from another export
            # would only be refused.
            doc = {k: v for k, v in doc.items() if k not in ("name", "updateTime")}
        with server.client() as api:
            stored = api.put_policy(project, doc)
    if as_json:
        print_json(stored)
    else:
        note(f"stored projects/{project}/policy (etag {stored.get('etag', '')})")


@app.command("get")
@connected
def get(
    server: Server,
    project: ProjectOpt,
    as_json: JsonOpt = False,
) -> None:
    """Print a project's policy (YAML, or JSON with --json)."""
    with errors(), server.client() as api:
        policy = api.get_policy(project)
    if as_json:
        print_json(policy)
    else:
        typer.echo(yaml.safe_dump(policy, sort_keys=False), nl=False)


def _offline_inputs(
    project: str,
    policy_file: Path,
    attestor_files: list[Path],
    occurrence_files: list[Path],
) -> OfflineInputs:
    inputs = OfflineInputs(project=project)
    docs = load_documents(policy_file, "policy file")
    if is_kritis(docs):
        inputs.kritis = parse_kritis_resources(docs)
    else:
        if len(docs) != 1:
            raise InvalidArgument(f"policy file {policy_file} holds {len(docs)} documents")
        parse_policy(docs[0])
        inputs.policy = docs[0]
    for path in attestor_files:
        for i, doc in enumerate(load_documents(path, "attestor file")):
            if not isinstance(doc, dict):
                raise InvalidArgument(f"attestor file {path} must hold attestor objects")
            source = str(path) if i == 0 else f"{path} [document {i}]"
            inputs.attestors.append((source, doc))
    for path in occurrence_files:
        notes, occurrences = split_grafeas_dump(load_document(path, "occurrences file"), str(path))
        inputs.notes += notes
        inputs.occurrences += occurrences
    return inputs


@app.command("evaluate")
@connected
def evaluate(
    server: Server,
    images: Annotated[
        list[str],
        typer.Option("--image", "-i", help="Image to judge (repeatable), best REPO@sha256:…"),
    ],
    project: Annotated[
        str | None,
        project_option(
            "Project whose policy applies (server); offline, the policy's project "
            "(default: default).",
        ),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Kubernetes namespace.")
    ] = None,
    service_account: Annotated[
        str | None,
        typer.Option("--service-account", help="Service account (name or namespace:name)."),
    ] = None,
    cluster: Annotated[
        str | None, typer.Option("--cluster", help="Cluster, as location.clusterId.")
    ] = None,
    policy_file: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Evaluate OFFLINE against this policy (or Kritis) file instead of a server.",
        ),
    ] = None,
    attestor_files: Annotated[
        list[Path] | None,
        typer.Option("--attestor", help="Offline: attestor file (repeatable)."),
    ] = None,
    occurrence_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--occurrences",
            help="Offline: JSON list of Grafeas notes and occurrences, or a ListOccurrences "
            "response (repeatable).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Would these images be admitted? Prints the judge's explanation.

    Exits 0 when allowed (a dry-run denial is allowed), 1 when denied. Without --policy the
    server's stored policy decides (nothing is recorded); with --policy, everything is
    evaluated here from the given files.
    """
    with errors():
        if policy_file is None and (attestor_files or occurrence_files):
            raise InvalidArgument(
                "--attestor and --occurrences are for offline evaluation: add --policy FILE"
            )
        request = AdmissionRequest(
            images=tuple(images),
            cluster=cluster,
            namespace=namespace,
            service_account=service_account,
        )
        if policy_file is not None:
            offline_project = project or _policy_project(policy_file) or "default"
            validate_project_id(offline_project, field="--project")
            inputs = _offline_inputs(
                offline_project, policy_file, attestor_files or [], occurrence_files or []
            )
            decision = evaluate_offline(inputs, request, utc_now())
            result = {**decision.to_dict(), "explanation": decision.explain()}
        else:
            if project is None:
                raise InvalidArgument(
                    "--project is required to evaluate against a server (or give --policy FILE "
                    "to evaluate offline)"
                )
            body: dict[str, Any] = {"images": list(images)}
            for key, value in (
                ("namespace", namespace),
                ("serviceAccount", service_account),
                ("cluster", cluster),
            ):
                if value:
                    body[key] = value
            with server.client() as api:
                result = api.evaluate_policy(project, body)
    if as_json:
        print_json(result)
    else:
        allowed = bool(result.get("allowed"))
        for i, line in enumerate(str(result.get("explanation", "")).splitlines()):
            note(line, style=("bold green" if allowed else "bold red") if i == 0 else "")
    if not result.get("allowed"):
        raise check_failed()


def _policy_project(path: Path) -> str | None:
    try:
        docs = load_documents(path, "policy file")
    except InvalidArgument:
        return None
    name = docs[0].get("name") if len(docs) == 1 and isinstance(docs[0], dict) else None
    if isinstance(name, str) and name.startswith("projects/") and name.count("/") == 2:
        return name.split("/")[1]
    return None


SinceOpt = Annotated[
    str,
    typer.Option("--since", help="Recorded admissions since: an age (7d, 24h, 30m) or RFC 3339."),
]
RunningOpt = Annotated[
    bool,
    typer.Option("--running/--no-running", help="Also judge the pods running now."),
]


def _policy_document(path: Path) -> dict[str, Any]:
    doc = load_document(path, "policy file")
    if is_kritis([doc]) or not isinstance(doc, dict):
        raise InvalidArgument(f"{path} must hold one Binary Authorization policy")
    parse_policy(doc)  # every problem with its path, here, before the server is asked
    return {k: v for k, v in doc.items() if k not in ("name", "updateTime", "etag")}


def _show_report(report: dict[str, Any]) -> None:
    note(
        f"judged {report['judged']} cases ({report['admissions']} recorded admissions since "
        f"{report['since']}, {report['running']} running pods) over {report['images']} images: "
        f"{report['changed']} would change"
    )
    for rule in report.get("ruleChanges", []):
        note(f"rule {rule['change']}: {rule['rule']}")
    for shift in report.get("coverageShifts", []):
        note(f"{shift['kind']} {shift['name']}: {shift['ruleBefore']} -> {shift['ruleAfter']}")
    for transition, count in report.get("byTransition", {}).items():
        note(f"  {transition}: {count}")
    for change in report["changes"]:
        where = (
            f"{change['namespace']}/{change['workload']}" if change["workload"] else change["ref"]
        )
        what = f"recorded {change['recorded']}, " if change["recorded"] else ""
        note(
            f"{change['source']} {where} ({what}{change['before']} -> {change['after']})",
            style="bold",
        )
        for image in change["images"]:
            note(f"  {image['image']}: {image['ruleBefore']} -> {image['ruleAfter']}")
            for reason in image["nowFailing"]:
                note(f"    now fails: {reason}")
            for reason in image["nowPassing"]:
                note(f"    now passes: {reason}")
    if report.get("changesTruncated"):
        note(f"(the first {len(report['changes'])} changes are listed; use --json for counts)")
    for line in report.get("notes", []):
        note(f"note: {line}")


@app.command("replay")
@connected
def replay(
    server: Server,
    file: PolicyFileArg,
    project: ProjectOpt,
    since: SinceOpt = "7d",
    running: RunningOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Re-judge the recorded admissions (and the running pods) under a proposed policy and
    print which outcomes change and why; nothing is stored or enforced.

    Both the stored and the proposed policy judge the same evidence (read once), so a change
    is the policy's. Exits 1 when any outcome would change.
    """
    with errors(), server.client() as api:
        body = {"policy": _policy_document(file), "since": since, "running": running}
        report = api.replay_policy(project, body)
    if as_json:
        print_json(report)
    else:
        _show_report(report)
    if report.get("changed"):
        raise check_failed()


@app.command("diff")
@connected
def diff(
    server: Server,
    a: Annotated[Path, typer.Argument(metavar="A", help="The first policy file.")],
    b: Annotated[Path, typer.Argument(metavar="B", help="The second policy file.")],
    project: ProjectOpt,
    since: SinceOpt = "7d",
    running: RunningOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Compare two policies: the rules they define differently, the namespaces, service
    accounts and images that fall to another rule, and the outcomes that change on the
    project's recorded admissions and running pods. Exits 1 when any outcome differs."""
    with errors(), server.client() as api:
        body = {
            "a": _policy_document(a),
            "b": _policy_document(b),
            "since": since,
            "running": running,
        }
        report = api.diff_policies(project, body)
    if as_json:
        print_json(report)
    else:
        _show_report(report)
    if report.get("changed"):
        raise check_failed()


@app.command("coverage")
@connected
def coverage_(
    server: Server,
    project: ProjectOpt,
    since: SinceOpt = "7d",
    everything: Annotated[
        bool, typer.Option("--all", help="List covered ones too, with their rule.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Namespaces, service accounts and running (or recently admitted) images that no
    specific rule of the stored policy covers, and the rule each falls to (the cluster or
    default rule)."""
    with errors(), server.client() as api:
        params = {"since": since, "all": "true" if everything else ""}
        report = api.policy_coverage(project, params)
    if as_json:
        print_json(report)
        return
    note(f"{report['uncovered']} of {report['total']} fall to no specific rule")
    t = table("kind", "name", "rule", "evaluation")
    for item in report["items"]:
        t.add_row(item["kind"], item["name"], item["rule"], item["evaluationMode"])
    out.print(t)
