"""What a run leaves on a daemon someone else runs (attach mode), found by the run's label alone,
and its removal by `storprof clean`.

The baseline's directory lies under the attached daemon's data root, which may be on another
machine, so it is removed from a container of the run's own labelled image, at the path computed
from the daemon's own data root and the run id (layout.py), like the session does at its end.
"""

from __future__ import annotations

from collections.abc import Callable

import docker

from storprof.engine import containers
from storprof.engine.containers import LABEL
from storprof.errors import first_line
from storprof.harness.layout import RunLayout


def _client(docker_host: str) -> docker.DockerClient:
    return docker.DockerClient(base_url=docker_host, version="auto", timeout=120)


def labelled(docker_host: str, run_id: str) -> list[str]:
    """Containers, volumes and images with this run's label on an attached daemon."""
    try:
        client = _client(docker_host)
    except Exception:
        return []                         # the daemon is gone: nothing of ours can be left in it
    selector = {"label": f"{LABEL}={run_id}"}
    try:
        found = [f"container {c.name}" for c in client.containers.list(all=True, filters=selector)]
        found += [f"volume {v.name}" for v in client.volumes.list(filters=selector)]
        found += [f"image {i.short_id}" for i in client.images.list(filters=selector)]
        return found
    except Exception:
        return []
    finally:
        client.close()


def remove_labelled(docker_host: str, layout: RunLayout, progress: Callable[[str], None]) -> list[str]:
    """The run's work directory under the daemon's data root, then its containers, volumes, images."""
    try:
        client = _client(docker_host)
    except Exception:
        return []
    run_id = layout.run_id
    selector = {"label": f"{LABEL}={run_id}"}
    problems = []
    try:
        images = client.images.list(filters=selector)
        root = str(client.info().get("DockerRootDir") or "")
        if images and root.startswith("/"):
            work = layout.attached_work(root)
            parent, name = work.rsplit("/", 1)
            progress(f"removing {work} on {docker_host}")
            containers.run(client, images[0].id, command=["/bin/rm", "-rf", f"/parent/{name}"], remove=True,
                           labels=containers.labels_for(run_id),
                           volumes={parent: {"bind": "/parent", "mode": "rw"}}, name=f"storprof-{run_id}-clean")
        for c in client.containers.list(all=True, filters=selector):
            progress(f"removing container {c.name} from {docker_host}")
            c.remove(force=True)
        for v in client.volumes.list(filters=selector):
            progress(f"removing volume {v.name}")
            v.remove(force=True)
        for i in client.images.list(filters=selector):
            progress(f"removing image {i.short_id}")
            client.images.remove(i.id, force=True)
    except Exception as e:
        problems.append(f"attached daemon {docker_host}: {first_line(e)}")
    finally:
        client.close()
    return problems
