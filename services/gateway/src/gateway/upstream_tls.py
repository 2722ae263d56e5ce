"""An upstream's TLS context, loaded again when its files change on disk.

cert-manager renews a certificate into the same Secret, and the kubelet swaps
the mounted files for the new ones (one symlink, so the CA, certificate and
key change together). The gateway looks at the files' identity (inode,
modification time, size) whenever it opens a connection to the upstream, a
few stat calls on a path already much slower than that, and builds a new
context when they changed: new connections use the renewed files, pooled
ones finish their life on the old. Files that do not load (caught mid-write,
or a certificate without its key) leave the last good context in use, with a
warning, and are tried again at the next connection.
"""

import logging
import os
import ssl
from pathlib import Path

from gateway.routing import Upstream

logger = logging.getLogger(__name__)

_Identity = tuple[tuple[int, int, int] | None, ...]


class UpstreamTls:
    """The TLS context for ``name``'s connections, current with its files.

    For an https:// upstream that names TLS files (``Upstream.tls_files``).
    """

    def __init__(self, name: str, upstream: Upstream) -> None:
        self.name = name
        self._upstream = upstream
        self._files = upstream.tls_files
        self._identity = _identity(self._files)
        self._context = upstream.tls_context()

    def context(self) -> ssl.SSLContext:
        """The context to open a connection with, reloaded if the files changed."""
        identity = _identity(self._files)
        if identity != self._identity:
            self._identity = identity
            self._reload()
        return self._context

    def _reload(self) -> None:
        try:
            context = self._upstream.tls_context()
        except (ValueError, OSError) as exc:
            logger.warning(
                "upstream TLS files did not load; the previous ones stay in use",
                extra={"upstream": self.name, "error": str(exc)},
            )
            return
        self._context = context
        logger.info("upstream TLS files reloaded", extra={"upstream": self.name})


def _identity(files: tuple[Path, ...]) -> _Identity:
    identities: list[tuple[int, int, int] | None] = []
    for path in files:
        try:
            status = os.stat(path)
        except OSError:
            identities.append(None)
        else:
            identities.append((status.st_ino, status.st_mtime_ns, status.st_size))
    return tuple(identities)
