"""What touches the machine: paths root may write, mounts, processes, limits, tools, backing filesystems."""
