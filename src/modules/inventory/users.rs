//! Local users (`/etc/passwd`, with the password state from `/etc/shadow` when readable) and
//! groups (`/etc/group`).

use super::root::Root;
use gatewatch_proto::inventory::{Group, User};

/// The users, in file order.
pub fn users(root: &Root) -> Vec<User> {
    let shadow = root.read("/etc/shadow").unwrap_or_default();
    let status = |name: &str| -> String {
        let Some(hash) = shadow
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| *n == name)
            .map(|(_, rest)| rest.split(':').next().unwrap_or(""))
        else {
            return String::new();
        };
        match hash {
            "" => "no_password",
            h if h.starts_with('!') || h.starts_with('*') => "locked",
            _ => "password",
        }
        .into()
    };
    let text = root.read("/etc/passwd").unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let [name, _pw, uid, gid, gecos, home, shell] = f.as_slice() else {
                return None;
            };
            Some(User {
                name: name.to_string(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                gecos: gecos.to_string(),
                home: home.to_string(),
                shell: shell.to_string(),
                password_status: status(name),
            })
        })
        .collect()
}

/// The groups, in file order.
pub fn groups(root: &Root) -> Vec<Group> {
    let text = root.read("/etc/group").unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let [name, _pw, gid, members] = f.as_slice() else {
                return None;
            };
            Some(Group {
                name: name.to_string(),
                gid: gid.parse().ok()?,
                members: members.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_tells_locked_empty_and_set_passwords() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nbin:x:2:2::/bin:/usr/sbin/nologin\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/shadow"),
            "root::19000:0:99999:7:::\nbin:*:19000::::::\npi:$6$salt$hash:19000:0:99999:7:::\n",
        )
        .unwrap();
        let users = users(&Root::new(dir.path()));
        let status: Vec<_> = users.iter().map(|u| u.password_status.as_str()).collect();
        assert_eq!(status, ["no_password", "locked", "password"]);
        assert_eq!(users[2].home, "/home/pi");
    }
}
