//! The host name, which is the agent's name when the configuration gives none (as in Wazuh).

/// The kernel's node name (`uname -n`), or `None` when it is empty or not UTF-8.
pub fn host_name() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_str().ok()?.trim();
    if name.is_empty() {
        None
    } else {
        Some(name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_matches_the_kernel_hostname_file() {
        // /proc/sys/kernel/hostname is the same node name, read another way.
        let from_proc = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .ok();
        assert_eq!(host_name(), from_proc.filter(|s| !s.is_empty()));
    }
}
