"""Socket receivers (syslog, SNMP traps): frame, authenticate, enqueue in micro-batches."""
