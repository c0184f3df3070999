"""Who may call what: authentication of callers, authorization of operations, API tokens and
the audit trail, shared by every entrypoint."""
