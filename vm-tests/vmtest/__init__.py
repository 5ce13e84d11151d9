"""The edge-setup VM test harness (see ../README.md)."""

from __future__ import annotations

import os
from pathlib import Path

from .machine import CommandFailed, Machine, StepFailed

__all__ = ["Machine", "StepFailed", "CommandFailed", "edge_setup_binary", "edge_setup_deb",
           "edge_setup_cockpit_deb"]

REPO = Path(__file__).resolve().parent.parent.parent


def edge_setup_binary() -> Path:
    """The edge-setup binary to test: $EDGE_SETUP_BIN, else the packages' (scripts/package:
    target/x86_64-unknown-linux-gnu/release/edge-setup), target/release/edge-setup or
    target/debug/edge-setup, the first that exists (scripts/test builds the debug one while
    the VM suite runs)."""
    if os.environ.get("EDGE_SETUP_BIN"):
        candidates = [Path(os.environ["EDGE_SETUP_BIN"])]
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        candidates = [target / "x86_64-unknown-linux-gnu" / "release" / "edge-setup",
                      target / "release" / "edge-setup", target / "debug" / "edge-setup"]
    for path in candidates:
        if path.is_file():
            return path
    raise StepFailed("no edge-setup binary (looked for "
                     + ", ".join(map(str, candidates)) + "): run `cargo build --release` first")


def _package(variable: str, pattern: str, name: str) -> Path:
    """$VARIABLE, else the newest target/debian/PATTERN (made by scripts/package)."""
    if os.environ.get(variable):
        path = Path(os.environ[variable])
        if path.is_file():
            return path
        raise StepFailed(f"{variable} names {path}, which is not a file")
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    debs = sorted((target / "debian").glob(pattern), key=lambda p: p.stat().st_mtime)
    if not debs:
        raise StepFailed(f"no {name} package in {target / 'debian'}: run scripts/package first")
    return debs[-1]


def edge_setup_deb() -> Path:
    """The package to test: $EDGE_SETUP_DEB, else the newest target/debian/edge-setup_*_amd64.deb."""
    return _package("EDGE_SETUP_DEB", "edge-setup_*_amd64.deb", "edge-setup")


def edge_setup_cockpit_deb() -> Path:
    """The web console page's package to test: $EDGE_SETUP_COCKPIT_DEB, else the newest
    target/debian/edge-setup-cockpit_*_all.deb, which scripts/package makes beside edge-setup's."""
    return _package("EDGE_SETUP_COCKPIT_DEB", "edge-setup-cockpit_*_all.deb", "edge-setup-cockpit")
