//! Users and groups: from the image's /etc/passwd and /etc/group with `--root`,
//! through the system's name service (nix) on a live system.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::system::fs::Root;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Where users and groups come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The host's name service (NSS, so LDAP or sssd users too).
    Host,
    /// The image's own /etc/passwd and /etc/group.
    Image,
}

pub struct Users<'a> {
    root: &'a Root,
    source: Source,
}

impl<'a> Users<'a> {
    pub fn new(root: &'a Root, source: Source) -> Self {
        Users { root, source }
    }

    pub fn by_name(&self, name: &str) -> Result<Option<UserInfo>> {
        match self.source {
            Source::Host => Ok(nix::unistd::User::from_name(name)
                .map_err(|e| Error::failure(format!("cannot look up user '{name}'")).why(e))?
                .map(from_nix_user)),
            Source::Image => Ok(self.passwd()?.into_iter().find(|u| u.name == name)),
        }
    }

    pub fn by_uid(&self, uid: u32) -> Result<Option<UserInfo>> {
        match self.source {
            Source::Host => Ok(nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .map_err(|e| Error::failure(format!("cannot look up uid {uid}")).why(e))?
                .map(from_nix_user)),
            Source::Image => Ok(self.passwd()?.into_iter().find(|u| u.uid == uid)),
        }
    }

    /// A user that must exist; the error names the user and how to create one.
    pub fn require(&self, name: &str) -> Result<UserInfo> {
        self.by_name(name)?.ok_or_else(|| match self.source {
            Source::Host => Error::bad_input(format!("there is no user '{name}' on this system")).hint(format!(
                "check the name, or create the user first: sudo useradd --create-home {name}"
            )),
            // useradd writes the image's passwd, group and shadow, and its home, with --root
            Source::Image => Error::bad_input(format!("there is no user '{name}' in the image")).hint(format!(
                "check the name, or create the user in the image first: useradd --root {} --create-home {name}",
                self.root.dir().display()
            )),
        })
    }

    pub fn group(&self, name: &str) -> Result<Option<GroupInfo>> {
        match self.source {
            Source::Host => Ok(nix::unistd::Group::from_name(name)
                .map_err(|e| Error::failure(format!("cannot look up group '{name}'")).why(e))?
                .map(from_nix_group)),
            Source::Image => Ok(self.groups()?.into_iter().find(|g| g.name == name)),
        }
    }

    pub fn group_by_gid(&self, gid: u32) -> Result<Option<GroupInfo>> {
        match self.source {
            Source::Host => Ok(nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                .map_err(|e| Error::failure(format!("cannot look up gid {gid}")).why(e))?
                .map(from_nix_group)),
            Source::Image => Ok(self.groups()?.into_iter().find(|g| g.gid == gid)),
        }
    }

    fn passwd(&self) -> Result<Vec<UserInfo>> {
        let text = self.root.read_string(Path::new("/etc/passwd"))?.unwrap_or_default();
        Ok(text.lines().filter_map(parse_passwd_line).collect())
    }

    fn groups(&self) -> Result<Vec<GroupInfo>> {
        let text = self.root.read_string(Path::new("/etc/group"))?.unwrap_or_default();
        Ok(text.lines().filter_map(parse_group_line).collect())
    }
}

fn from_nix_group(g: nix::unistd::Group) -> GroupInfo {
    GroupInfo {
        name: g.name,
        gid: g.gid.as_raw(),
        members: g.mem,
    }
}

fn from_nix_user(u: nix::unistd::User) -> UserInfo {
    UserInfo {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        home: u.dir,
    }
}

fn parse_passwd_line(line: &str) -> Option<UserInfo> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 || line.starts_with('#') {
        return None;
    }
    Some(UserInfo {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: PathBuf::from(f[5]),
    })
}

fn parse_group_line(line: &str) -> Option<GroupInfo> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 4 || line.starts_with('#') {
        return None;
    }
    Some(GroupInfo {
        name: f[0].to_string(),
        gid: f[2].parse().ok()?,
        members: f[3].split(',').filter(|m| !m.is_empty()).map(str::to_string).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_users_and_groups_come_from_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nbroken line\nadmin:x:1000:1000:Admin,,,:/home/admin:/bin/bash\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nvncusers:x:990:admin,operator\n",
        )
        .unwrap();
        let root = Root::new(dir.path()).unwrap();
        let users = Users::new(&root, Source::Image);
        let admin = users.by_name("admin").unwrap().unwrap();
        assert_eq!(
            (admin.uid, admin.gid, admin.home.as_path()),
            (1000, 1000, Path::new("/home/admin"))
        );
        assert_eq!(users.by_uid(0).unwrap().unwrap().name, "root");
        assert!(users.by_name("nobody").unwrap().is_none());
        let err = users.require("ghost").unwrap_err();
        assert!(err.to_string().contains("no user 'ghost'"));
        let g = users.group("vncusers").unwrap().unwrap();
        assert_eq!(g.members, vec!["admin", "operator"]);
    }
}
