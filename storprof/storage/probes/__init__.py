"""Union probes: what copy-up, deep stacks, lookups, page cache and union operations cost."""
