"""``chainproof tokens|iam|auth|audit …``: who may do what, from the command line.

* ``tokens create NAME --project P --role R [--expires 30d]`` prints the secret once;
  ``tokens list``, ``tokens revoke``;
* ``iam get|set|add-binding|remove-binding`` on a project or (``--note``) a note, with the
  etag read-modify-write that keeps two administrators from overwriting each other;
* ``auth whoami``: who the server thinks you are;
* ``audit list``: writes and denied writes, filtered by principal, permission and time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from chainproof.cli.client import ChainproofClient
from chainproof.cli.inputs import lifetime, load_documents, moment
from chainproof.cli.options import JsonOpt, ProjectOpt, Server, connected
from chainproof.cli.output import errors, note, out, print_json, table
from chainproof.domain.timestamps import rfc3339
from chainproof.errors import InvalidArgument
from chainproof.services.common import utc_now

tokens_app = typer.Typer(
    help="API tokens for CI and robots (only a hash is stored).", no_args_is_help=True
)
iam_app = typer.Typer(
    help="IAM policies of projects and notes: who holds which role.", no_args_is_help=True
)
auth_app = typer.Typer(help="Who the server thinks you are.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: writes and denied writes.", no_args_is_help=True)

NoteOpt = Annotated[
    str | None,
    typer.Option("--note", help="A note ID: act on the note's policy, not the project's."),
]
RoleOpt = Annotated[
    str, typer.Option("--role", "-r", help="e.g. roles/containeranalysis.occurrences.editor")
]


def _iam_path(project: str, note_id: str | None) -> str:
    return f"/v1/projects/{project}" + (f"/notes/{note_id}" if note_id else "")


# ---------------------------------------------------------------------- tokens
@tokens_app.command("create")
@connected
def tokens_create(
    server: Server,
    name: Annotated[str, typer.Argument(help="Token name; its member is token:NAME.")],
    project: ProjectOpt,
    role: RoleOpt,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime such as 30d or 12h (default: none).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an API token with ROLE on PROJECT and print its secret, once."""
    with errors():
        body: dict[str, Any] = {"name": name, "role": role}
        if expires is not None:
            body["expireTime"] = _expiry(expires)
        with server.client() as c:
            made = c.request("POST", f"/v1/projects/{project}/tokens", body=body)
    if json_out:
        print_json(made)
        return
    note(f"created token:{made['name']} with {made['role']} on projects/{made['project']}")
    note("The secret is shown now and never again; store it where your CI keeps secrets:")
    typer.echo(made["secret"])


def _expiry(text: str) -> str:
    return rfc3339(utc_now() + lifetime(text, "--expires"))


@tokens_app.command("list")
@connected
def tokens_list(
    server: Server,
    project: ProjectOpt,
    json_out: JsonOpt = False,
) -> None:
    """List the API tokens of PROJECT (never their secrets)."""
    with errors(), server.client() as c:
        got = c.request("GET", f"/v1/projects/{project}/tokens")
    if json_out:
        print_json(got)
        return
    t = table("name", "role", "created by", "expires", "revoked")
    for tok in got.get("tokens", []):
        t.add_row(
            tok["name"],
            tok["role"],
            tok["createdBy"],
            tok.get("expireTime", "never"),
            tok.get("revokeTime", ""),
        )
    out.print(t)


@tokens_app.command("revoke")
@connected
def tokens_revoke(
    server: Server,
    name: Annotated[str, typer.Argument(help="Token name.")],
    project: ProjectOpt,
) -> None:
    """Revoke an API token: it stops working at once on this server, within seconds on others."""
    with errors(), server.client() as c:
        c.request("DELETE", f"/v1/projects/{project}/tokens/{name}")
    note(f"revoked token:{name}")


# ---------------------------------------------------------------------- iam
def _get_policy(c: ChainproofClient, project: str, note_id: str | None) -> dict[str, Any]:
    got: dict[str, Any] = c.request("POST", _iam_path(project, note_id) + ":getIamPolicy", body={})
    return got


def _print_policy(policy: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print_json(policy)
        return
    t = table("role", "members")
    for b in policy.get("bindings", []):
        t.add_row(b["role"], "\n".join(b["members"]))
    out.print(t)
    note(f"etag {policy.get('etag', '')}")


@iam_app.command("get")
@connected
def iam_get(
    server: Server,
    project: ProjectOpt,
    note_id: NoteOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print the IAM policy of a project (or of one of its notes)."""
    with errors(), server.client() as c:
        policy = _get_policy(c, project, note_id)
    _print_policy(policy, json_out)


@iam_app.command("set")
@connected
def iam_set(
    server: Server,
    file: Annotated[Path, typer.Argument(help="YAML or JSON policy: {bindings, etag}.")],
    project: ProjectOpt,
    note_id: NoteOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replace the IAM policy with FILE. With the etag `iam get` printed, a policy someone else
    changed in between is not overwritten; without one, it is."""
    with errors():
        docs = load_documents(file, "IAM policy")
        if len(docs) != 1 or not isinstance(docs[0], dict):
            raise InvalidArgument(f"{file} must hold one policy object: {{bindings, etag}}")
        with server.client() as c:
            stored = c.request(
                "POST", _iam_path(project, note_id) + ":setIamPolicy", body={"policy": docs[0]}
            )
    _print_policy(stored, json_out)


def _edit_binding(
    project: str,
    note_id: str | None,
    role: str,
    member: str,
    add: bool,
    server: Server,
    json_out: bool,
) -> None:
    with errors(), server.client() as c:
        policy = _get_policy(c, project, note_id)
        bindings = {b["role"]: list(b["members"]) for b in policy.get("bindings", [])}
        members = bindings.setdefault(role, [])
        if add and member not in members:
            members.append(member)
        elif not add:
            if member not in members:
                raise InvalidArgument(f"{member} does not hold {role} here; nothing to remove")
            members.remove(member)
        body = {
            "policy": {
                "bindings": [{"role": r, "members": m} for r, m in bindings.items() if m],
                # Read-modify-write: refused if someone changed the policy in between.
                "etag": policy["etag"],
            }
        }
        stored = c.request("POST", _iam_path(project, note_id) + ":setIamPolicy", body=body)
    _print_policy(stored, json_out)


@iam_app.command("add-binding")
@connected
def iam_add_binding(
    server: Server,
    project: ProjectOpt,
    role: RoleOpt,
    member: Annotated[
        str, typer.Option("--member", "-m", help="e.g. user:qa@example.com, token:ci")
    ],
    note_id: NoteOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Grant ROLE to MEMBER on a project (or a note)."""
    _edit_binding(project, note_id, role, member, True, server, json_out)


@iam_app.command("remove-binding")
@connected
def iam_remove_binding(
    server: Server,
    project: ProjectOpt,
    role: RoleOpt,
    member: Annotated[str, typer.Option("--member", "-m", help="The member to remove.")],
    note_id: NoteOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Take ROLE away from MEMBER on a project (or a note)."""
    _edit_binding(project, note_id, role, member, False, server, json_out)


# ---------------------------------------------------------------------- auth, audit
@auth_app.command("whoami")
@connected
def whoami(
    server: Server,
    json_out: JsonOpt = False,
) -> None:
    """Print the member the server sees for your credentials, and how it verified them."""
    with errors(), server.client() as c:
        me = c.request("GET", "/v1/auth:whoami")
    if json_out:
        print_json(me)
        return
    note(f"{me['member']} (via {me['via']})")
    for g in me.get("grants", []):
        where = "every project" if g["project"] == "*" else f"projects/{g['project']}"
        note(f"  carries {g['role']} on {where}")


@audit_app.command("list")
@connected
def audit_list(
    server: Server,
    project: ProjectOpt,
    principal: Annotated[str | None, typer.Option("--principal", help="e.g. token:ci")] = None,
    permission: Annotated[
        str | None, typer.Option("--permission", help="e.g. binaryauthorization.policy.update")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339 or an age: 2h, 7d")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339 or an age")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    json_out: JsonOpt = False,
) -> None:
    """List audit entries of PROJECT, newest first."""
    with errors():
        now = utc_now()
        params: dict[str, str | int] = {"pageSize": limit}
        if principal:
            params["principal"] = principal
        if permission:
            params["permission"] = permission
        if since:
            params["since"] = rfc3339(moment(since, "--since", now))
        if until:
            params["until"] = rfc3339(moment(until, "--until", now))
        with server.client() as c:
            got = c.request("GET", f"/v1/projects/{project}/auditLogs", params=params)
    if json_out:
        print_json(got)
        return
    t = table("time", "outcome", "principal", "permission", "resource", "code")
    for e in got.get("auditLogs", []):
        t.add_row(
            e["time"],
            e["outcome"],
            e["principal"],
            e["permission"],
            e["resource"],
            e.get("code", ""),
        )
    out.print(t)
