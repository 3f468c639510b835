"""Tests of the pure mapping layer (mappings/), mirroring its modules."""
