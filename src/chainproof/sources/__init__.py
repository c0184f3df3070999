"""Adapters for evidence that lives outside the store (OCI registries), behind ports."""
