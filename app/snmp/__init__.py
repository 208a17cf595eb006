"""SNMP traps: authentication and decoding (engine), OID names (mibs), trap -> event (mapping)."""
