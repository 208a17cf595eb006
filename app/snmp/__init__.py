"""SNMP traps: datagrams in (engine: ber, usm), OID names (mibs), trap -> event (mapping)."""
