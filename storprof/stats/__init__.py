"""Statistics on repeated measurements, computed once into typed rows that every view formats."""
