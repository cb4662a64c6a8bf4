"""Performance benchmarks of enos_pulumi (``make bench``, i.e. ``python -m benchmarks``).

Every timed figure is a ratio against a baseline measured in the same run, sample by sample in
alternating order, reported as the ratio of the medians. Figures:

a. check + diff versus ID count, against canonicalizing and hashing the IDs with the standard library;
   and through Pulumi's real provider host over gRPC (a list joined by the program, and unjoined),
   against the provider's own check + diff in process.
b. a reset split into many requests against per-request latency: wall time against the round-trip bound.
c. provider overhead of one 100,000-pair request against a bare signed ``requests`` POST of the same body.
d. peak traced memory of check + diff + the reset's request bodies for 1,000,000 IDs.
e. bytes of stored inputs and outputs per resource as the ID count grows.
f. tokens fetched and connections opened by 50 resets in one provider host process.
g. registering 1,000,000 IDs in a program: a list (joined by the resource) against a string the program
   joins itself.

Not part of ``make test``. Options: ``--quick`` (smaller sizes, fewer samples), ``--json PATH``,
``--only a,c``, ``--strict`` (exit 1 when a figure misses its target).
"""
