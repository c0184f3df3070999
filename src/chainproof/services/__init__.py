"""Use cases, grouped by the half of chainproof they serve: ``scribe/`` (the Grafeas store's
semantics), ``judge/`` (policy, evidence, admission and what follows it) and ``access/`` (who
may call what). ``common`` holds the few helpers both halves share, and ``outbox`` the
events both halves append beside their changes (the notifier, in ``judge/``, delivers them)."""
