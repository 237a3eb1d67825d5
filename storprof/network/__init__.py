"""`storprof net`: namespaces of storprof's own, the network paths into a container, the tools driven."""
