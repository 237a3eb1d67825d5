"""Images whose data files live in a lower layer: what lower-layer reads and copy-up need.

A file in the container's own top layer costs a union filesystem nothing; a file the image
shipped is another matter (copy-up on the first write, lookups through the layers). These images
are the bench image plus one layer holding such files, written by fio with direct I/O in a
scratch container and committed, so they are laid out exactly like the top-layer data files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker.errors

from storprof.errors import DaemonError, StorprofError
from storprof.storage.fio.job import precondition_job
from storprof.storage.fio.placements import CONTAINER_JOBS_DIR, LOWER_DIR, ContainerTarget
from storprof.storage.fio.result import parse_fio_output


def image_with_files(client, base_ref: str, files: dict[str, str], labels: dict[str, str], name: str,
                     timeout: float = 3600) -> str:
    """The id of a new image: `base_ref` plus a layer with each file (name -> fio size) in LOWER_DIR,
    written with direct I/O like the other placements' data files."""
    def write(builder: ContainerTarget) -> None:
        for filename, size in sorted(files.items()):
            text = precondition_job(size).render(directory=LOWER_DIR, filename=filename)
            fio_run = builder.run_fio(text, f"lower-{filename}", timeout)
            try:
                parse_fio_output(fio_run.stdout, fio_run.stderr)
            except StorprofError as e:
                raise StorprofError(f"writing the {size} lower-layer file {filename} failed: {e}") from None
    return commit_layer(client, base_ref, labels, name, write)


def commit_layer(client, base_ref: str, labels: dict[str, str], name: str,
                 write: Callable[[ContainerTarget], None]) -> str:
    """The id of a new image: `base_ref` plus one layer holding what `write` does in a scratch
    container (named `name`), committed with the run's labels."""
    builder = ContainerTarget(client, base_ref, "union", labels, name=name)
    try:
        write(builder)
        # The job files storprof put in the builder stay out of the image.
        builder.remove_dir(CONTAINER_JOBS_DIR)
        builder.exec(["/bin/mkdir", CONTAINER_JOBS_DIR])
        changes = [f"LABEL {k}={v}" for k, v in labels.items()] + ['CMD ["/bin/sleep", "infinity"]']
        try:
            image = builder.container.commit(changes=changes)
        except docker.errors.DockerException as e:
            raise DaemonError(f"committing the lower-layer image failed: {e}") from None
        return image.id
    finally:
        builder.close()


def remove_image(client, image_id: str | None) -> None:
    """Remove an image this run made; gone already is fine."""
    if not image_id:
        return
    try:
        client.images.remove(image_id, force=True)
    except docker.errors.NotFound:
        pass


def load_archive(client, path: Path, what: str) -> None:
    """`docker load` of an archive storprof wrote (no registry here); DaemonError naming `what`."""
    with open(path, "rb") as f:
        try:
            client.images.load(f)
        except docker.errors.DockerException as e:
            raise DaemonError(f"loading {what} failed: {e}") from None
