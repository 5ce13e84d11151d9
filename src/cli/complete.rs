//! Values the shell completes at a Tab (`commands::completions`), read on the machine.

use clap_complete::CompletionCandidate;

/// The configuration keys, each with its description.
pub fn config_keys() -> Vec<CompletionCandidate> {
    crate::config::KEYS
        .iter()
        .map(|k| CompletionCandidate::new(k.name).help(Some(k.doc.into())))
        .collect()
}

/// Login users of this machine (`/etc/passwd`, uid 1000 and up, and root).
pub fn users() -> Vec<CompletionCandidate> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    login_users(&passwd).into_iter().map(CompletionCandidate::new).collect()
}

fn login_users(passwd: &str) -> Vec<String> {
    passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let uid: u32 = fields.get(2)?.parse().ok()?;
            (uid == 0 || (1000..65534).contains(&uid)).then(|| fields[0].to_string())
        })
        .collect()
}

/// The network interfaces, but loopback.
pub fn interfaces() -> Vec<CompletionCandidate> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.into_iter().map(CompletionCandidate::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_users_are_root_and_uids_from_1000() {
        let passwd = "root:x:0:0::/root:/bin/bash\ndaemon:x:1:1::/:/usr/sbin/nologin\n\
                      admin:x:1000:1000::/home/admin:/bin/bash\nnobody:x:65534:65534::/:/bin/false\nbroken\n";
        assert_eq!(login_users(passwd), ["root", "admin"]);
    }
}
