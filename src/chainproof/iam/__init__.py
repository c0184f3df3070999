"""Who may do what, as pure data and decisions (no I/O, no clock).

- :mod:`.principals`: the identity of a caller and its IAM member string;
- :mod:`.permissions`: every permission name (Google's where Google has one);
- :mod:`.roles`: the predefined roles that bundle permissions;
- :mod:`.policy`: IAM policies (bindings, etags) and their validation;
- :mod:`.authorizer`: the one decision, ``allowed or denied, and why``;
- :mod:`.jwt`: checking a JSON Web Token against a key set at a given time;
- :mod:`.api_tokens`: chainproof's own API tokens (format, hashing);
- :mod:`.certificates`: the identity a client certificate names.

Fetching key sets, calling TokenReview and storing policies belong to ``sources/`` and the
services; this package only decides.
"""
