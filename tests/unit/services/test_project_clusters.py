"""Which inventory clusters a project sees: its own configured clusters and, for the
admission project, the webhook's cluster; a project with none sees none (never all)."""

from __future__ import annotations

from chainproof.config import load_settings
from chainproof.services.judge.runtime_setup import project_clusters


def test_clusters_belong_to_their_project_and_default_to_the_admission_project() -> None:
    settings = load_settings(
        admission={"project": "prod", "cluster": "edge-1"},
        runtime={
            "clusters": [
                {"name": "prod-eu", "url": "https://eu:6443", "token_file": "/t", "ca_file": "/c"},
                {
                    "name": "lab",
                    "project": "research",
                    "url": "https://lab:6443",
                    "token_file": "/t",
                    "ca_file": "/c",
                },
            ]
        },
    )
    assert project_clusters(settings, "prod") == ("prod-eu", "edge-1")
    assert project_clusters(settings, "research") == ("lab",)
    assert project_clusters(settings, "nobody") == ()


def test_the_webhook_cluster_claimed_by_another_project_is_not_the_admission_projects() -> None:
    settings = load_settings(
        admission={"project": "prod", "cluster": "lab"},
        runtime={
            "clusters": [
                {
                    "name": "lab",
                    "project": "research",
                    "url": "https://lab:6443",
                    "token_file": "/t",
                    "ca_file": "/c",
                }
            ]
        },
    )
    assert project_clusters(settings, "prod") == ()
    assert project_clusters(settings, "research") == ("lab",)
