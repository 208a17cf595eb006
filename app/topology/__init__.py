"""The topology: which nodes (hosts, network devices, services, databases) depend on which.

:mod:`.graph` is the in-memory graph the correlator walks; :mod:`.spec` validates and converts
documents (JSON in the current and the older shape, CSV, NetBox exports); :mod:`.store` keeps the
versions in the database and caches the current graph.
"""
