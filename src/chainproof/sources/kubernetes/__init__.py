"""Kubernetes: the pod feed that keeps the workload inventory, and actions on pods.

``port`` holds what services see (``PodFeed``, ``PodFeedHandler``, ``PodActions``);
``client`` builds a kubernetes_asyncio API client from a kubeconfig, in-cluster credentials
or a URL and token; ``feed`` lists and watches pods; ``actions`` writes Events, annotations
and evictions.
"""
