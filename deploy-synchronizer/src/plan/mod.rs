//! `(desired, live) -> Plan`: apply stages, ordering and prune selection by inventory.
