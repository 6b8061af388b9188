//! The operating system row: os-release (with Yocto/Poky and Raspberry Pi OS recognised) and
//! the kernel's identity.

use super::root::Root;
use gatewatch_proto::inventory::OsInfo;

/// Collects the OS row.
pub fn collect(root: &Root) -> OsInfo {
    let release = root
        .read("/etc/os-release")
        .or_else(|| root.read("/usr/lib/os-release"))
        .unwrap_or_default();
    let mut os = from_os_release(&release);
    if os.os_name.is_empty() {
        if let Some(version) = root.read_line("/etc/debian_version") {
            os.os_name = "Debian GNU/Linux".into();
            os.os_platform = "debian".into();
            os.os_version = version;
        }
    }
    recognise_raspberry_pi_os(root, &mut os);
    split_version(&mut os);
    kernel(root, &mut os);
    os
}

/// Parses os-release (`KEY=value`, values optionally quoted).
pub fn from_os_release(text: &str) -> OsInfo {
    let mut os = OsInfo::default();
    let mut version = String::new();
    let mut distro_codename = String::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "NAME" => os.os_name = value,
            "ID" => os.os_platform = value,
            "VERSION_ID" => os.os_version = value,
            "VERSION" => version = value,
            "VERSION_CODENAME" => os.os_codename = value,
            // Yocto's os-release has DISTRO_CODENAME instead of VERSION_CODENAME.
            "DISTRO_CODENAME" => distro_codename = value,
            "ID_LIKE" => os.os_like = value,
            _ => {}
        }
    }
    if os.os_version.is_empty() {
        os.os_version = version.split_whitespace().next().unwrap_or("").to_string();
    }
    if os.os_codename.is_empty() {
        os.os_codename = if !distro_codename.is_empty() {
            distro_codename
        } else {
            // `VERSION="4.0.17 (kirkstone)"`, `VERSION="12 (bookworm)"`.
            version
                .split_once('(')
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(name, _)| name.trim().to_string())
                .unwrap_or_default()
        };
    }
    os
}

fn unquote(value: &str) -> String {
    let v = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    v.replace("\\\"", "\"")
}

/// Raspberry Pi OS 64-bit reports itself as Debian; `/etc/rpi-issue` gives it away.
fn recognise_raspberry_pi_os(root: &Root, os: &mut OsInfo) {
    let rpi = root.path("/etc/rpi-issue").exists();
    if os.os_platform == "raspbian" || (rpi && os.os_platform == "debian") {
        os.os_name = "Raspberry Pi OS".into();
        if os.os_like.is_empty() {
            os.os_like = "debian".into();
        }
    }
}

/// `4.0.17` → major 4, minor 0, patch 17.
fn split_version(os: &mut OsInfo) {
    let mut parts = os.os_version.split(['.', '-', '+', '~']);
    let mut next = || parts.next().unwrap_or("").to_string();
    os.os_major = next();
    os.os_minor = next();
    os.os_patch = next();
}

fn kernel(root: &Root, os: &mut OsInfo) {
    os.sysname = root
        .read_line("/proc/sys/kernel/ostype")
        .unwrap_or_else(|| "Linux".into());
    os.release = root
        .read_line("/proc/sys/kernel/osrelease")
        .unwrap_or_default();
    os.version = root
        .read_line("/proc/sys/kernel/version")
        .unwrap_or_default();
    os.hostname = root
        .read_line("/proc/sys/kernel/hostname")
        .or_else(|| root.read_line("/etc/hostname"))
        .unwrap_or_default();
    os.architecture = root
        .read_line("/proc/sys/kernel/arch")
        .or_else(|| {
            root.is_live().then(|| {
                rustix::system::uname()
                    .machine()
                    .to_string_lossy()
                    .into_owned()
            })
        })
        .unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_codename_and_version_parts() {
        let os = from_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        assert_eq!(os.os_name, "Debian GNU/Linux");
        assert_eq!(
            (os.os_platform.as_str(), os.os_version.as_str()),
            ("debian", "12")
        );
        assert_eq!(os.os_codename, "bookworm");
    }

    #[test]
    fn raspberry_pi_os_is_named_even_when_it_says_debian() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/os-release"),
            "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/rpi-issue"),
            "Raspberry Pi reference 2024-07-04\n",
        )
        .unwrap();
        let os = collect(&Root::new(dir.path()));
        assert_eq!(os.os_name, "Raspberry Pi OS");
        assert_eq!(os.os_platform, "debian");
        assert_eq!(os.os_major, "12");
    }
}
