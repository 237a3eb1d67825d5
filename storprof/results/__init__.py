"""The results model: typed records, the store they are appended to, and reading them back safely.

The store's names are the package's: a results directory is what callers open, whatever module holds it.
"""

from storprof.results.store import (
    META_FILE,
    RESULTS_FILE,
    ResultSet,
    ResultsStore,
    default_out_dir,
    machine_metadata,
    mem_total_bytes,
    tool_versions,
)

__all__ = ["META_FILE", "RESULTS_FILE", "ResultSet", "ResultsStore", "default_out_dir", "machine_metadata",
           "mem_total_bytes", "tool_versions"]
