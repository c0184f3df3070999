"""Adapters that deliver notifications to the outside world (HTTP webhooks, NATS JetStream).

Each implements ``port.Sink``: deliver one CloudEvent's bytes or raise ``DeliveryFailed``
(saying whether trying again may help). Retrying, ordering and dead-lettering belong to the
notifier service, which keeps that state in the store.
"""
