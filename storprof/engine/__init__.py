"""Container engines: the catalogue of drivers, engines fetched into the cache, daemons, images, containers."""
