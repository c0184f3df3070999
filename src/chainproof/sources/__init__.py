"""Adapters for the world outside the store (OCI registries, identity providers, Kubernetes),
each behind a small interface that services depend on."""
