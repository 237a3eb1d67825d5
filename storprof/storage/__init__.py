"""The storage workloads: fio cells, union probes, layer timing and the engine-level benchmarks."""
