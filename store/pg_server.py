"""Which PostgreSQL server binaries the embedded cluster uses (with PostGIS), and the system user
they run as: PostgreSQL refuses to run as root, so a root process runs them as ``postgres``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER = "postgres"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")


class ClusterError(RuntimeError):
    """An expected failure of the embedded cluster; the message says what to do next."""


@dataclass(frozen=True)
class Binaries:
    """A PostgreSQL server installation: its binaries, major version and share directory."""

    bin_dir: Path
    major: int
    share_dir: Path

    def tool(self, name: str) -> str:
        """The path of one of its programs."""
        return str(self.bin_dir / name)


@dataclass(frozen=True)
class Owner:
    """The unprivileged user the server runs as when this process is root."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def find_binaries(configured: Path | None) -> Binaries:
    """The server binaries to use (GRIDMAP_PG_BIN_DIR, else the newest installed), checked to have PostGIS."""
    bin_dir = _find_bin_dir(configured)
    major, share_dir = _version_and_share_dir(bin_dir)
    control = share_dir / "extension" / "postgis.control"
    if not control.is_file():
        raise ClusterError(
            f"PostGIS is not installed for PostgreSQL {major} (no {control}). Install "
            f"it with `apt-get install postgresql-{major}-postgis-3`, then run "
            f"`gridmap db start` again."
        )
    return Binaries(bin_dir=bin_dir, major=major, share_dir=share_dir)


def _find_bin_dir(configured: Path | None) -> Path:
    if configured is not None:
        bin_dir = configured.expanduser().absolute()
        if not (bin_dir / "initdb").is_file():
            raise ClusterError(
                f"GRIDMAP_PG_BIN_DIR={bin_dir} has no initdb. Point it at the bin directory "
                f"of a PostgreSQL server installation (e.g. {DEBIAN_PG_ROOT}/15/bin), or "
                f"unset it to search {DEBIAN_PG_ROOT}."
            )
        return bin_dir
    # Debian installs each major version side by side; the newest one wins.
    versions = sorted(
        (int(d.name), d / "bin")
        for d in (DEBIAN_PG_ROOT.iterdir() if DEBIAN_PG_ROOT.is_dir() else ())
        if d.name.isdigit() and (d / "bin" / "initdb").is_file()
    )
    if versions:
        return versions[-1][1]
    # Elsewhere (Homebrew, source builds) the server binaries are usually on PATH.
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise ClusterError(
        f"No PostgreSQL server found (no initdb under {DEBIAN_PG_ROOT}/*/bin or on PATH). "
        "Install one with `apt-get install postgresql-15 postgresql-15-postgis-3`, or set "
        "GRIDMAP_PG_BIN_DIR to the directory holding initdb."
    )


def server_owner() -> Owner | None:
    """None when not root (run as ourselves); otherwise the postgres system user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise ClusterError(
            "Running as root, but PostgreSQL refuses to run as root and there is no "
            f"`{SYSTEM_USER}` system user to run it as. Install the server package "
            "(`apt-get install postgresql-15`), which creates that user, or run gridmap as "
            "an ordinary user."
        ) from None
    return Owner(
        name=entry.pw_name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        groups=tuple(os.getgrouplist(entry.pw_name, entry.pw_gid)),
        home=entry.pw_dir,
    )


def run_as(owner: Owner | None, args: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a server binary as `owner` (None: as this process), output captured, cwd "/"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # PGPORT etc.
    env["LC_ALL"] = "C"  # stable English messages in errors and the log
    creds: dict[str, object] = {}
    if owner is not None:
        creds = {"user": owner.uid, "group": owner.gid, "extra_groups": list(owner.groups)}
        env.update(HOME=owner.home, USER=owner.name, LOGNAME=owner.name)
    return subprocess.run(
        args,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=timeout,
        check=False,
        **creds,  # type: ignore[arg-type]
    )


def _version_and_share_dir(bin_dir: Path) -> tuple[int, Path]:
    """The major version of the binaries in ``bin_dir`` and their share directory."""
    pg_config = bin_dir / "pg_config"
    if pg_config.is_file():
        try:
            out = subprocess.run(
                [str(pg_config), "--version", "--sharedir"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout.splitlines()
            match = re.search(r"PostgreSQL (\d+)", out[0])
            if match and len(out) > 1:
                return int(match.group(1)), Path(out[1].strip())
        except (OSError, subprocess.SubprocessError, IndexError):
            pass  # fall back to asking initdb and guessing the layout
    try:
        out = subprocess.run(
            [str(bin_dir / "initdb"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ClusterError(f"Could not run {bin_dir / 'initdb'} --version: {exc}") from None
    match = re.search(r"(\d+)", out)
    if match is None:
        raise ClusterError(f"Cannot tell the PostgreSQL version from {out.strip()!r}.")
    major = int(match.group(1))
    # Debian: /usr/share/postgresql/<major>; source builds: <prefix>/share/postgresql.
    candidates = [
        Path("/usr/share/postgresql") / str(major),
        bin_dir.parent / "share" / "postgresql",
        bin_dir.parent / "share",
    ]
    share = next((c for c in candidates if (c / "extension").is_dir()), candidates[0])
    return major, share
