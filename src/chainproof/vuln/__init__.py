"""The pure core of chainproof's own vulnerability scanner.

- :mod:`~chainproof.vuln.osv`: OSV records (osv-schema 1.6), parsed once into typed objects;
- :mod:`~chainproof.vuln.ecosystems`: each ecosystem's name rules, purl type and version order;
- :mod:`~chainproof.vuln.versions`: version orders over ``univers``, one interface;
- :mod:`~chainproof.vuln.ranges`: the OSV evaluation algorithm (introduced / fixed /
  last_affected / limit, several ranges, ``versions`` lists), written once;
- :mod:`~chainproof.vuln.severity`: CVSS vectors to scores and Grafeas severities;
- :mod:`~chainproof.vuln.packages`: the package side (an SBOM entry, its purl, its source);
- :mod:`~chainproof.vuln.match`: an index of advisories and the matching of packages to it.

Nothing here reads files, the network, a database or the clock: records come in as bytes or
mappings, and findings go out as values. Storing, importing and re-matching are services.
"""
