//! Installed packages from every package database found under the root: dpkg and opkg
//! (control-file paragraphs), rpm (the SQLite rpmdb) and apk (`lib/apk/db/installed`).
//!
//! Each database is read as a stream, one package at a time, so a large database never sits in
//! memory.

mod apk;
mod control;
mod rpm;

use super::root::Root;
use gatewatch_proto::inventory::Package;

/// Where each format keeps its database (first existing path wins per format).
const DPKG: &[&str] = &["/var/lib/dpkg/status"];
const OPKG: &[&str] = &["/usr/lib/opkg/status", "/var/lib/opkg/status"];
const RPM: &[&str] = &[
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
];
const APK: &[&str] = &["/lib/apk/db/installed"];

/// Every installed package, database after database.
pub fn collect(root: &Root) -> impl Iterator<Item = Package> {
    let root = root.clone();
    let found = |paths: &[&'static str]| -> Option<&'static str> {
        paths.iter().find(|p| root.path(p).is_file()).copied()
    };
    let dpkg = found(DPKG).map(|p| control::Reader::dpkg(&root, p));
    let opkg = found(OPKG).map(|p| control::Reader::opkg(&root, p));
    let rpm = found(RPM).map(|p| rpm::Reader::new(&root, p));
    let apk = found(APK).map(|p| apk::Reader::new(&root, p));
    dpkg.into_iter()
        .flatten()
        .chain(opkg.into_iter().flatten())
        .chain(rpm.into_iter().flatten())
        .chain(apk.into_iter().flatten())
}
