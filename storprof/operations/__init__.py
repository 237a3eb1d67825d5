"""What the commands do, one function each, outside the CLI: the CLI parses and validates options,
builds one plan and calls one of these (commands -> operations)."""
