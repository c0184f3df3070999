"""``chainproof registry``: registry evidence on the command line.

* ``sync REF``: read the cosign signatures, attestations and key-signed bundles beside an
  image, verify them with an attestor's keys (fetched from the server) for the image's digest,
  and record those that verify as occurrences in the scribe.

Registry access (hosts, TLS, credentials) comes from the same settings file as the server's
(``--config``, section ``registry``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from chainproof.cli.options import JsonOpt, Server, connected, project_option
from chainproof.cli.output import errors, note, print_json, warn
from chainproof.domain.images import parse_image_reference
from chainproof.domain.names import parse_attestor_ref
from chainproof.policy.attestors import parse_attestor
from chainproof.services.common import utc_now

app = typer.Typer(help="Evidence stored in OCI registries (cosign, Sigstore bundles).")


@app.command("sync")
@connected
def sync(
    server: Server,
    reference: Annotated[str, typer.Argument(help="Image, by tag or digest: registry/repo:tag.")],
    attestor: Annotated[
        str, typer.Option("--attestor", help="projects/P/attestors/A whose keys must verify.")
    ],
    project: Annotated[str, project_option("Project the occurrences go into.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Settings file with the registry section (hosts, TLS)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be recorded; write nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Record the verified registry evidence of REF in the scribe.

    A tag is resolved to its digest first; only evidence that verifies for that digest under
    the attestor's keys is copied, and content the scribe already holds is not copied twice.
    """
    from chainproof.config import load_settings
    from chainproof.services.judge.evidence import attestor_keys
    from chainproof.services.scribe.registry_sync import new_occurrences, registry_occurrences
    from chainproof.sources.registry.client import Deadline
    from chainproof.sources.registry.factory import build_registry_reader
    from chainproof.sources.registry.port import RegistryArtifacts

    with errors():
        settings = load_settings(config)
        image = parse_image_reference(reference)
        with server.client() as api:
            trusted = parse_attestor(
                api.get_attestor(str(parse_attestor_ref(attestor, field="--attestor")))
            )
            keys = attestor_keys(trusted)

            async def read() -> tuple[str, RegistryArtifacts]:
                reader = build_registry_reader(
                    settings.registry,
                    None,
                    destinations=settings.outbound.destination_policy(),
                )
                try:
                    deadline = Deadline(max(settings.registry.timeout_seconds, 10.0))
                    digest = await reader.resolve(image, deadline)
                    pinned = parse_image_reference(f"{image.name}@{digest}")
                    return digest, await reader.artifacts(pinned, deadline)
                finally:
                    await reader.client.aclose()

            digest, artifacts = asyncio.run(read())
            pinned = parse_image_reference(f"{image.name}@{digest}")
            plan = registry_occurrences(pinned, artifacts, trusted, keys, utc_now())
            existing = api.list_note_occurrences(
                trusted.note_reference, f'resourceUrl="{pinned.canonical}"'
            )
            fresh = new_occurrences(plan.occurrences, existing)
            created = [] if dry_run else [api.create_occurrence(project, o) for o in fresh]
    for source, why in plan.skipped:
        warn(f"not recorded: {source}: {why}")
    if as_json:
        print_json({"image": pinned.canonical, "recorded": created or fresh, "dryRun": dry_run})
        return
    verb = "would record" if dry_run else "recorded"
    note(
        f"{pinned.canonical}: {len(plan.occurrences)} verified, {verb} {len(fresh)} "
        f"({len(plan.occurrences) - len(fresh)} already in the scribe)"
    )
    for item in created:
        note(f"  {item.get('name', '')}")
