//! Files under a root directory (`/` on a running system, an image with `--root`).
//!
//! Every path is walked one component at a time from a directory descriptor,
//! never through a path string the kernel resolves on its own, so a path can
//! not escape the root. Symbolic links are followed only when they are owned by
//! a trusted user (root, or in image mode the image's owner): a link planted by
//! an ordinary user (say `~/.vnc -> /etc`) stops the operation with an error.
//! The last component of a written file is never followed: a write replaces
//! the file, or refuses when it is a link.
//!
//! Writes are atomic: a temporary file in the same directory, owner and mode set
//! before any byte of content, fsync, rename, fsync of the directory. In image
//! mode (`Root::durable(false)`) the fsyncs are left out: an image is a build
//! artifact synced when it is packed, and the rename alone already leaves the
//! old file or the new one to anyone who reads it, even after a kill.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, unlinkat};

use crate::error::{Error, Result};

/// Owner and permission bits of a file or directory to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpec {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl FileSpec {
    pub const fn root(mode: u32) -> Self {
        FileSpec { mode, uid: 0, gid: 0 }
    }
}

/// What a write did, so commands can say "unchanged" on a second run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

/// Ownership and mode of an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub is_dir: bool,
}

impl From<&FileStat> for Meta {
    fn from(st: &FileStat) -> Self {
        Meta {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            is_dir: (st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR.bits(),
        }
    }
}

const MAX_LINKS: usize = 40;

/// The root directory every path resolves under.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
    trusted: Vec<u32>,
    /// Opened once by the invoking user, so that acting as an image's user
    /// (see `as_user`) never needs the right to pass the host directories
    /// above the image (a `mktemp -d` directory is 0700).
    fd: std::sync::Arc<OwnedFd>,
    /// Whether writes are fsynced (a running system) or not (an image).
    durable: bool,
}

impl Root {
    /// `dir` is `/` on a live system. In image mode the owner of the image
    /// directory is trusted too, so an image prepared without root works.
    pub fn new(dir: &Path) -> Result<Self> {
        let meta = std::fs::metadata(dir).map_err(|e| {
            Error::bad_input(format!("cannot use {} as the root", dir.display()))
                .why(e)
                .hint("give --root an existing directory that holds the system image")
        })?;
        if !meta.is_dir() {
            return Err(Error::bad_input(format!(
                "cannot use {} as the root: not a directory",
                dir.display()
            )));
        }
        let mut trusted = vec![0];
        if dir != Path::new("/") {
            trusted.push(std::os::unix::fs::MetadataExt::uid(&meta));
        }
        let fd = openat(
            nix::fcntl::AT_FDCWD,
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open", dir, e.into()))?;
        Ok(Root {
            dir: dir.to_path_buf(),
            trusted,
            fd: std::sync::Arc::new(fd),
            durable: true,
        })
    }

    /// Whether writes reach the disk before they count as done (see the module doc).
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether files owned by `uid` are trusted like root's (root, or the image's owner).
    pub fn trusts(&self, uid: u32) -> bool {
        self.trusted.contains(&uid)
    }

    /// The host path of a target path, for messages and for tools that need a path.
    pub fn host_path(&self, target: &Path) -> PathBuf {
        let rel = target.strip_prefix("/").unwrap_or(target);
        if self.dir == Path::new("/") {
            Path::new("/").join(rel)
        } else {
            self.dir.join(rel)
        }
    }

    fn open_root(&self) -> Result<OwnedFd> {
        self.fd.try_clone().map_err(|e| Error::io("open", &self.dir, e))
    }

    /// Walks `components` from the root and returns a descriptor (O_PATH) of the
    /// directory they name. Missing directories are created with `create` when given.
    /// `None` when a component is missing and `create` is not given.
    fn walk(&self, target: &Path, parts: VecDeque<OsString>, create: Option<FileSpec>) -> Result<Option<OwnedFd>> {
        let mut stack: Vec<OwnedFd> = vec![self.open_root()?];
        let mut queue = parts;
        let mut links = 0;
        while let Some(part) = queue.pop_front() {
            if part == "." || part.is_empty() {
                continue;
            }
            if part == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let cur = stack.last().expect("root stays on the stack");
            let st = match fstatat(cur, part.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => Some(st),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(Error::io("inspect", &self.host_path(target), e.into())),
            };
            match st {
                None => {
                    let Some(spec) = create else {
                        return Ok(None);
                    };
                    match mkdirat(cur, part.as_os_str(), Mode::from_bits_truncate(spec.mode)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(Error::io("create a directory for", &self.host_path(target), e.into())),
                    }
                    let fd = self.open_dir_at(cur, &part, target)?;
                    // mkdir honours the umask: set the exact mode and owner now.
                    let real = self.readable_dir(&fd, "open", target)?;
                    set_owner_mode(&real, spec)
                        .map_err(|e| Error::io("set the owner of a directory for", &self.host_path(target), e))?;
                    stack.push(fd);
                }
                Some(st) if is_link(&st) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Error::failure(format!(
                            "too many symbolic links under {}",
                            self.host_path(target).display()
                        )));
                    }
                    self.check_link_owner(&st, target, &part)?;
                    let dest = readlinkat(cur, part.as_os_str())
                        .map_err(|e| Error::io("read a link in", &self.host_path(target), e.into()))?;
                    let dest = PathBuf::from(dest);
                    if dest.is_absolute() {
                        stack.truncate(1);
                    }
                    for c in dest.components().rev() {
                        if let Component::Normal(n) = c {
                            queue.push_front(n.to_os_string());
                        } else if c == Component::ParentDir {
                            queue.push_front(OsString::from(".."));
                        }
                    }
                }
                Some(_) => {
                    let fd = self.open_dir_at(cur, &part, target)?;
                    stack.push(fd);
                }
            }
        }
        Ok(stack.pop())
    }

    fn open_dir_at(&self, dir: &OwnedFd, name: &OsStr, target: &Path) -> Result<OwnedFd> {
        openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOTDIR | Errno::ELOOP => Error::failure(format!(
                "cannot open {}: {} is not a directory",
                self.host_path(target).display(),
                name.to_string_lossy()
            )),
            e => Error::io("open", &self.host_path(target), e.into()),
        })
    }

    /// A readable descriptor of the directory behind `dir` (an O_PATH one), which
    /// fsync, fchown, unlinkat and listing need.
    fn readable_dir(&self, dir: &OwnedFd, action: &str, target: &Path) -> Result<OwnedFd> {
        openat(
            dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(action, &self.host_path(target), e.into()))
    }

    fn check_link_owner(&self, st: &FileStat, target: &Path, part: &OsStr) -> Result<()> {
        if self.trusted.contains(&st.st_uid) {
            return Ok(());
        }
        Err(Error::failure(format!(
            "refusing to follow the symbolic link '{}' on the way to {}: it is owned by uid {}, not by root",
            part.to_string_lossy(),
            self.host_path(target).display(),
            st.st_uid
        ))
        .hint("remove the link (or replace it with a real directory) and run the command again"))
    }

    /// Splits a target path into its parent's components and its file name.
    fn split(target: &Path) -> Result<(VecDeque<OsString>, OsString)> {
        let mut parts: VecDeque<OsString> = target
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect();
        let name = parts
            .pop_back()
            .filter(|n| n != "..")
            .ok_or_else(|| Error::bad_input(format!("{} does not name a file", target.display())))?;
        Ok((parts, name))
    }

    /// The parent directory of `target` and its last component; `None` when the
    /// parent is missing and `create` is not given.
    fn parent(&self, target: &Path, create: Option<FileSpec>) -> Result<Option<(OwnedFd, OsString)>> {
        let (parts, name) = Self::split(target)?;
        Ok(self.walk(target, parts, create)?.map(|fd| (fd, name)))
    }

    /// Like `parent`, creating missing directories with `create`.
    fn parent_created(&self, target: &Path, create: FileSpec) -> Result<(OwnedFd, OsString)> {
        Ok(self
            .parent(target, Some(create))?
            .expect("missing directories are created"))
    }

    /// The status of `target` without following a link at its last component.
    fn lstat(&self, target: &Path) -> Result<Option<FileStat>> {
        let Some((dir, name)) = self.parent(target, None)? else {
            return Ok(None);
        };
        match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(Error::io("inspect", &self.host_path(target), e.into())),
        }
    }

    /// Metadata of `target` without following a link at its last component.
    pub fn meta(&self, target: &Path) -> Result<Option<Meta>> {
        Ok(self.lstat(target)?.map(|st| Meta::from(&st)))
    }

    /// Whether the last component of `target` is a symbolic link.
    pub fn is_link(&self, target: &Path) -> Result<bool> {
        Ok(self.lstat(target)?.is_some_and(|st| is_link(&st)))
    }

    /// Reads a file; `None` when it does not exist. A trusted link at the last
    /// component is followed (e.g. `/etc/resolv.conf`), an untrusted one refused.
    pub fn read(&self, target: &Path) -> Result<Option<Vec<u8>>> {
        let Some((dir, name)) = self.parent(target, None)? else {
            return Ok(None);
        };
        let st = match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(Error::io("read", &self.host_path(target), e.into())),
        };
        if is_link(&st) {
            self.check_link_owner(&st, target, &name)?;
            let dest = readlinkat(&dir, name.as_os_str())
                .map_err(|e| Error::io("read a link in", &self.host_path(target), e.into()))?;
            let dest = Path::new(&dest);
            let next = if dest.is_absolute() {
                dest.to_path_buf()
            } else {
                target.parent().unwrap_or(Path::new("/")).join(dest)
            };
            return self.read(&next);
        }
        let fd = match openat(
            &dir,
            name.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(Error::io("read", &self.host_path(target), e.into())),
        };
        let mut buf = Vec::new();
        File::from(fd)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("read", &self.host_path(target), e))?;
        Ok(Some(buf))
    }

    /// Reads a UTF-8 text file; `None` when it does not exist.
    pub fn read_string(&self, target: &Path) -> Result<Option<String>> {
        match self.read(target)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| Error::failure(format!("{} is not a UTF-8 text file", self.host_path(target).display()))),
        }
    }

    /// Creates the directory `target` (and missing parents, with the same spec)
    /// or brings an existing one to `spec`.
    pub fn ensure_dir(&self, target: &Path, spec: FileSpec) -> Result<Change> {
        let (dir, name) = self.parent_created(target, FileSpec { mode: 0o755, ..spec })?;
        let existed = match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_link(&st) => {
                return Err(Error::failure(format!(
                    "{} is a symbolic link, not a directory",
                    self.host_path(target).display()
                ))
                .hint("remove the link and run the command again"));
            }
            Ok(st) => Some(Meta::from(&st)),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(Error::io("inspect", &self.host_path(target), e.into())),
        };
        if existed.is_none() {
            match mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(spec.mode)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::io("create the directory", &self.host_path(target), e.into())),
            }
        }
        let fd = self.open_dir_at(&dir, &name, target)?;
        let real = self.readable_dir(&fd, "open", target)?;
        let wanted = Meta {
            uid: spec.uid,
            gid: spec.gid,
            mode: spec.mode,
            is_dir: true,
        };
        if existed == Some(wanted) {
            return Ok(Change::Unchanged);
        }
        set_owner_mode(&real, spec).map_err(|e| Error::io("set the owner and mode of", &self.host_path(target), e))?;
        Ok(if existed.is_some() {
            Change::Updated
        } else {
            Change::Created
        })
    }

    /// Writes `contents` to `target` atomically with the owner and mode of `spec`.
    /// Missing parent directories are created 0755 with the file's owner.
    pub fn write(&self, target: &Path, contents: &[u8], spec: FileSpec) -> Result<Change> {
        match self.stage(target, contents, spec)? {
            None => Ok(Change::Unchanged),
            Some(staged) => staged.persist(),
        }
    }

    /// Writes `contents` to a temporary file beside `target` (owner and mode
    /// set, synced) without putting it in place; `None` when `target` already
    /// has that content, owner and mode. Dropping the result removes the
    /// temporary file; `Staged::persist` or `commit_together` puts it in place.
    pub fn stage(&self, target: &Path, contents: &[u8], spec: FileSpec) -> Result<Option<Staged>> {
        let (dir, name) = self.parent_created(target, FileSpec { mode: 0o755, ..spec })?;
        let host = self.host_path(target);
        let existing = match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_link(&st) => {
                return Err(
                    Error::failure(format!("refusing to write {}: it is a symbolic link", host.display()))
                        .hint("replace the link with a regular file (or remove it) and run the command again"),
                );
            }
            Ok(st) if Meta::from(&st).is_dir => {
                return Err(Error::failure(format!(
                    "cannot write {}: it is a directory",
                    host.display()
                )));
            }
            Ok(st) => Some(Meta::from(&st)),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(Error::io("inspect", &host, e.into())),
        };
        if let Some(meta) = existing {
            let wanted = Meta {
                uid: spec.uid,
                gid: spec.gid,
                mode: spec.mode,
                is_dir: false,
            };
            if meta == wanted && self.read(target)?.as_deref() == Some(contents) {
                return Ok(None);
            }
        }
        let real_dir = self.readable_dir(&dir, "open the directory of", target)?;
        // The kernel resolves /proc/self/fd/N to the directory already opened,
        // so the temporary file lands beside the target whatever the path says.
        let dir_path = PathBuf::from(format!("/proc/self/fd/{}", real_dir.as_raw_fd()));
        let mut tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(&name))
            .suffix(TEMP_SUFFIX)
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&dir_path)
            .map_err(|e| Error::io("create a temporary file for", &host, e))?;
        set_owner_mode(tmp.as_file(), spec).map_err(|e| Error::io("set the owner and mode of", &host, e))?;
        tmp.as_file_mut()
            .write_all(contents)
            .map_err(|e| Error::io("write", &host, e))?;
        if self.durable {
            tmp.as_file().sync_all().map_err(|e| Error::io("sync", &host, e))?;
        }
        Ok(Some(Staged {
            tmp,
            dir: real_dir,
            dir_path,
            name,
            host,
            owner: (spec.uid, spec.gid),
            durable: self.durable,
            change: if existing.is_some() {
                Change::Updated
            } else {
                Change::Created
            },
        }))
    }

    /// Removes temporary files a killed writer left beside `target`; the ones removed.
    pub fn remove_stale_temps(&self, target: &Path) -> Result<Vec<PathBuf>> {
        let (_, name) = Self::split(target)?;
        let prefix = temp_prefix(&name);
        let parent = target.parent().unwrap_or(Path::new("/"));
        let mut removed = Vec::new();
        for entry in self.list_dir(parent)? {
            let bytes = entry.as_bytes();
            if bytes.starts_with(prefix.as_bytes()) && bytes.ends_with(TEMP_SUFFIX.as_bytes()) {
                let stale = parent.join(&entry);
                if self.remove(&stale)? {
                    removed.push(stale);
                }
            }
        }
        Ok(removed)
    }

    /// The parent directory of `target` (readable, to unlink in) and its last
    /// component; `None` when the parent is missing.
    fn parent_to_unlink(&self, target: &Path) -> Result<Option<(OwnedFd, OsString)>> {
        let Some((dir, name)) = self.parent(target, None)? else {
            return Ok(None);
        };
        Ok(Some((self.readable_dir(&dir, "open the directory of", target)?, name)))
    }

    /// Removes a file (or a link, without following it). `false` when it was absent.
    pub fn remove(&self, target: &Path) -> Result<bool> {
        let Some((real_dir, name)) = self.parent_to_unlink(target)? else {
            return Ok(false);
        };
        match unlinkat(&real_dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) => {
                if self.durable {
                    nix::unistd::fsync(&real_dir)
                        .map_err(|e| Error::io("sync the directory of", &self.host_path(target), e.into()))?;
                }
                Ok(true)
            }
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(Error::io("remove", &self.host_path(target), e.into())),
        }
    }

    /// Removes an empty directory (never following a link). `false` when it was
    /// absent or is not empty, so callers can remove a tree's directories bottom-up.
    pub fn remove_empty_dir(&self, target: &Path) -> Result<bool> {
        let Some((real_dir, name)) = self.parent_to_unlink(target)? else {
            return Ok(false);
        };
        match unlinkat(&real_dir, name.as_os_str(), UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT | Errno::ENOTEMPTY | Errno::EEXIST | Errno::ENOTDIR) => Ok(false),
            Err(e) => Err(Error::io("remove the directory", &self.host_path(target), e.into())),
        }
    }

    /// Opens (creating it 0600 root when missing) a lock file and takes an
    /// exclusive flock on it, held until the returned guard is dropped.
    pub fn lock(&self, target: &Path) -> Result<nix::fcntl::Flock<File>> {
        let (dir, name) = self.parent_created(target, FileSpec::root(0o755))?;
        let host = self.host_path(target);
        let fd = openat(
            &dir,
            name.as_os_str(),
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| Error::io("open the lock file", &host, e.into()))?;
        nix::fcntl::Flock::lock(File::from(fd), nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::io("lock", &host, e.into()))
    }

    /// Changes owner and mode of an existing file or directory without following links.
    pub fn set_owner_mode(&self, target: &Path, spec: FileSpec) -> Result<()> {
        let host = self.host_path(target);
        let (dir, name) = self
            .parent(target, None)?
            .ok_or_else(|| Error::io("change", &host, std::io::ErrorKind::NotFound.into()))?;
        let st = fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| Error::io("inspect", &host, e.into()))?;
        if is_link(&st) {
            return Err(Error::failure(format!(
                "refusing to change {}: it is a symbolic link",
                host.display()
            )));
        }
        fchownat(
            &dir,
            name.as_os_str(),
            Some(Uid::from_raw(spec.uid)),
            Some(Gid::from_raw(spec.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::io("change the owner of", &host, e.into()))?;
        let fd = openat(
            &dir,
            name.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open", &host, e.into()))?;
        fchmod(&fd, Mode::from_bits_truncate(spec.mode)).map_err(|e| Error::io("change the mode of", &host, e.into()))
    }

    /// Reports a directory that would refuse a write of `target`, before a
    /// command's first write: walks to the nearest existing directory on the
    /// way (creating nothing) and asks the kernel whether this process may
    /// create files there (read-only file system, immutable directory,
    /// permissions), so a group of writes fails before it starts, not half way.
    pub fn check_writable(&self, target: &Path) -> Result<()> {
        let (mut parts, _) = Self::split(target)?;
        loop {
            if let Some(fd) = self.walk(target, parts.clone(), None)? {
                let dir: PathBuf = std::iter::once(OsString::from("/")).chain(parts).collect();
                let access = nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK;
                return nix::unistd::faccessat(&fd, ".", access, AtFlags::AT_EACCESS)
                    .map_err(|e| not_writable(&self.host_path(&dir), e));
            }
            // the root itself always walks, so this ends
            parts.pop_back();
        }
    }

    /// Names in a directory; empty when it does not exist.
    pub fn list_dir(&self, target: &Path) -> Result<Vec<OsString>> {
        let mut parts = Self::split(target).map(|(mut p, n)| {
            p.push_back(n);
            p
        })?;
        parts.retain(|p| !p.is_empty());
        let Some(fd) = self.walk(target, parts, None)? else {
            return Ok(Vec::new());
        };
        let real = self.readable_dir(&fd, "list", target)?;
        let mut dir = nix::dir::Dir::from_fd(real).map_err(|e| Error::io("list", &self.host_path(target), e.into()))?;
        let mut names: Vec<OsString> = dir
            .iter()
            .filter_map(|e| e.ok())
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        Ok(names)
    }
}

const TEMP_SUFFIX: &str = ".tmp";

/// Temporary files of `name` are `.NAME.XXXXXX.tmp`, so they can be found after a crash.
fn temp_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    prefix
}

/// A file written to a temporary name beside its target, not yet in place.
pub struct Staged {
    // Declared before `dir`: the temporary file is removed through the
    // directory descriptor, so it must drop first.
    tmp: tempfile::NamedTempFile,
    dir: OwnedFd,
    dir_path: PathBuf,
    name: OsString,
    host: PathBuf,
    /// The file's owner, whose identity renames it (a file in a user's home is
    /// put in place by that user).
    owner: (u32, u32),
    durable: bool,
    pub change: Change,
}

impl Staged {
    /// The host path of the target, for messages.
    pub fn host(&self) -> &Path {
        &self.host
    }

    /// Puts the file in place (rename, then fsync of the directory).
    pub fn persist(self) -> Result<Change> {
        let Staged {
            tmp,
            dir,
            dir_path,
            name,
            host,
            change,
            durable,
            ..
        } = self;
        tmp.persist(dir_path.join(&name))
            .map_err(|e| Error::io("replace", &host, e.error))?;
        if durable {
            nix::unistd::fsync(&dir).map_err(|e| Error::io("sync the directory of", &host, e.into()))?;
        }
        Ok(change)
    }
}

/// Puts several staged files in place as one step. The renames run in a child
/// process that ignores terminal signals and is not stopped by a SIGKILL of
/// this one, so a kill at any moment leaves all of the files old or all new.
/// The child shares the caller's open files, so a lock the caller holds stays
/// held until the child is done.
pub fn commit_together(staged: Vec<Staged>) -> Result<()> {
    use nix::libc;
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    use std::ffi::CString;

    if staged.is_empty() {
        return Ok(());
    }
    struct Job {
        dir: i32,
        tmp: CString,
        name: CString,
        owner: (u32, u32),
    }
    let cstring = |s: &OsStr| CString::new(s.as_bytes()).map_err(|_| Error::failure("a file name holds a NUL byte"));
    let mut jobs = Vec::with_capacity(staged.len());
    for s in &staged {
        let tmp_name = s
            .tmp
            .path()
            .file_name()
            .ok_or_else(|| Error::failure(format!("the temporary file for {} has no name", s.host.display())))?;
        jobs.push(Job {
            dir: s.dir.as_raw_fd(),
            tmp: cstring(tmp_name)?,
            name: cstring(&s.name)?,
            owner: s.owner,
        });
    }
    // Each directory is synced once, however many of the files it holds.
    let mut sync_dirs: Vec<i32> = Vec::new();
    let mut seen = Vec::new();
    for s in staged.iter().filter(|s| s.durable) {
        let st = nix::sys::stat::fstat(&s.dir).map_err(|e| Error::io("inspect the directory of", &s.host, e.into()))?;
        if !seen.contains(&(st.st_dev, st.st_ino)) {
            seen.push((st.st_dev, st.st_ino));
            sync_dirs.push(s.dir.as_raw_fd());
        }
    }
    let switch_identity = nix::unistd::geteuid().is_root();
    let signals = [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGTSTP,
    ];
    let mut block = SigSet::empty();
    for sig in signals {
        block.add(sig);
    }
    let old_mask = block
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .map_err(|e| Error::failure("cannot block signals").why(e))?;
    // SAFETY: the child only makes async-signal-safe system calls on memory
    // prepared before the fork, then _exits; it never returns into Rust code
    // that could allocate or take a lock another thread held.
    let forked = unsafe { fork() };
    let child = match forked {
        Ok(ForkResult::Child) => unsafe {
            for sig in signals {
                libc::signal(sig as libc::c_int, libc::SIG_IGN);
            }
            let mut code = 0;
            for job in &jobs {
                let as_owner = switch_identity && job.owner.0 != 0;
                if as_owner {
                    libc::setfsgid(job.owner.1);
                    libc::setfsuid(job.owner.0);
                }
                let r = libc::renameat(job.dir, job.tmp.as_ptr(), job.dir, job.name.as_ptr());
                if as_owner {
                    libc::setfsuid(0);
                    libc::setfsgid(0);
                }
                if r != 0 {
                    code = Errno::last_raw().clamp(1, 255);
                    break;
                }
            }
            for dir in &sync_dirs {
                libc::fsync(*dir);
            }
            libc::_exit(code)
        },
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            let _ = old_mask.thread_set_mask();
            return Err(Error::failure("cannot start the process that puts the files in place").why(e));
        }
    };
    let _ = old_mask.thread_set_mask();
    let status = loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            other => break other,
        }
    };
    match status {
        Ok(WaitStatus::Exited(_, 0)) => {
            // The temporary names are gone; nothing is left to remove.
            for s in staged {
                let _ = s.tmp.into_temp_path().keep();
            }
            Ok(())
        }
        Ok(WaitStatus::Exited(_, code)) => {
            // The first file whose temporary file is still there is the one that failed.
            let failed = staged
                .iter()
                .find(|s| {
                    let tmp = s.tmp.path().file_name().unwrap_or_default();
                    fstatat(&s.dir, tmp, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
                })
                .map(|s| s.host.clone())
                .unwrap_or_default();
            Err(Error::io(
                "put in place",
                &failed,
                std::io::Error::from_raw_os_error(code),
            ))
        }
        other => {
            Err(Error::failure("the process that puts the files in place did not finish").why(format!("{other:?}")))
        }
    }
}

fn not_writable(dir: &Path, e: Errno) -> Error {
    use crate::error::Kind;
    let hint = match e {
        Errno::EACCES | Errno::EPERM if !nix::unistd::geteuid().is_root() => {
            "run the command with sudo, or as the owner of that directory".to_string()
        }
        // Exit code 3 like every permission refusal (README), though sudo cannot help root.
        Errno::EACCES | Errno::EPERM => format!(
            "it refuses writes even to root: check its attributes with 'lsattr -d {}' ('chattr -i' removes the immutable flag)",
            dir.display()
        ),
        // Read-only file system, full disk...: the general wording and hints.
        _ => return Error::io("write in", dir, e.into()),
    };
    Error::new(Kind::NotPermitted, format!("cannot write in {}", dir.display()))
        .why(std::io::Error::from(e))
        .hint(hint)
}

fn is_link(st: &FileStat) -> bool {
    (st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK.bits()
}

/// Sets owner (when it differs from what the file has) and exact mode on an open file.
fn set_owner_mode(fd: &impl AsFd, spec: FileSpec) -> std::io::Result<()> {
    let st = nix::sys::stat::fstat(fd.as_fd())?;
    if st.st_uid != spec.uid || st.st_gid != spec.gid {
        fchown(fd.as_fd(), Some(Uid::from_raw(spec.uid)), Some(Gid::from_raw(spec.gid)))?;
    }
    fchmod(fd.as_fd(), Mode::from_bits_truncate(spec.mode))?;
    Ok(())
}

/// Runs `f` with the file-system identity of `uid`/`gid` (Linux fsuid), so that
/// files in a user's home are created by that user and the kernel checks every
/// access with that user's rights. Only root can switch; anyone else already
/// acts as themselves.
pub fn as_user<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> T {
    if !nix::unistd::geteuid().is_root() || uid == 0 {
        return f();
    }
    let old_gid = nix::unistd::setfsgid(Gid::from_raw(gid));
    let old_uid = nix::unistd::setfsuid(Uid::from_raw(uid));
    let out = f();
    nix::unistd::setfsuid(old_uid);
    nix::unistd::setfsgid(old_gid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path()).unwrap();
        (dir, root)
    }

    fn me() -> (u32, u32) {
        (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
    }

    #[test]
    fn write_creates_parents_and_sets_mode() {
        let (dir, root) = root();
        let (uid, gid) = me();
        let spec = FileSpec { mode: 0o640, uid, gid };
        assert_eq!(
            root.write(Path::new("/etc/a/b.conf"), b"x=1\n", spec).unwrap(),
            Change::Created
        );
        let meta = std::fs::metadata(dir.path().join("etc/a/b.conf")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!(std::fs::read(dir.path().join("etc/a/b.conf")).unwrap(), b"x=1\n");
        assert_eq!(
            root.write(Path::new("/etc/a/b.conf"), b"x=1\n", spec).unwrap(),
            Change::Unchanged
        );
        assert_eq!(
            root.write(Path::new("/etc/a/b.conf"), b"x=2\n", spec).unwrap(),
            Change::Updated
        );
        // no temporary file left behind
        let names: Vec<_> = std::fs::read_dir(dir.path().join("etc/a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("b.conf")]);
    }

    #[test]
    fn paths_cannot_escape_the_root() {
        let (dir, root) = root();
        let (uid, gid) = me();
        root.write(Path::new("/../../x"), b"1", FileSpec { mode: 0o600, uid, gid })
            .unwrap();
        assert!(dir.path().join("x").exists());
        // an absolute link inside the image resolves inside the image
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/real", dir.path().join("link")).unwrap();
        root.write(Path::new("/link/f"), b"2", FileSpec { mode: 0o600, uid, gid })
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("real/f")).unwrap(), b"2");
    }

    #[test]
    fn write_refuses_a_link_at_the_last_component() {
        let (dir, root) = root();
        let (uid, gid) = me();
        std::fs::write(dir.path().join("victim"), b"keep").unwrap();
        std::os::unix::fs::symlink("/victim", dir.path().join("file")).unwrap();
        let err = root
            .write(Path::new("/file"), b"evil", FileSpec { mode: 0o600, uid, gid })
            .unwrap_err();
        assert!(err.what.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("victim")).unwrap(), b"keep");
    }

    #[test]
    fn untrusted_links_are_not_followed() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to create a link owned by another user");
            return;
        }
        let (dir, root) = root();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let link = dir.path().join("home/.vnc");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &link,
            Some(Uid::from_raw(1000)),
            None,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        let err = root
            .write(Path::new("/home/.vnc/passwd"), b"x", FileSpec::root(0o600))
            .unwrap_err();
        assert!(err.what.contains("owned by uid 1000"), "{err}");
        assert!(!dir.path().join("etc/passwd").exists());
        assert!(root.read(Path::new("/home/.vnc/passwd")).is_err());
    }

    #[test]
    fn read_follows_trusted_links_and_reports_absence() {
        let (dir, root) = root();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        std::fs::write(dir.path().join("run/r.conf"), b"nameserver 1.1.1.1\n").unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("../run/r.conf", dir.path().join("etc/resolv.conf")).unwrap();
        assert_eq!(
            root.read_string(Path::new("/etc/resolv.conf")).unwrap().unwrap(),
            "nameserver 1.1.1.1\n"
        );
        assert_eq!(root.read(Path::new("/nope/x")).unwrap(), None);
        assert_eq!(root.meta(Path::new("/nope/x")).unwrap(), None);
    }

    #[test]
    fn ensure_dir_sets_exact_mode_and_remove_works() {
        let (dir, root) = root();
        let (uid, gid) = me();
        let spec = FileSpec { mode: 0o700, uid, gid };
        assert_eq!(root.ensure_dir(Path::new("/h/.vnc"), spec).unwrap(), Change::Created);
        assert_eq!(
            std::fs::metadata(dir.path().join("h/.vnc")).unwrap().mode() & 0o7777,
            0o700
        );
        assert_eq!(root.ensure_dir(Path::new("/h/.vnc"), spec).unwrap(), Change::Unchanged);
        root.write(Path::new("/h/.vnc/p"), b"1", spec).unwrap();
        assert!(root.remove(Path::new("/h/.vnc/p")).unwrap());
        assert!(!root.remove(Path::new("/h/.vnc/p")).unwrap());
        assert_eq!(root.list_dir(Path::new("/h")).unwrap(), vec![OsString::from(".vnc")]);
    }

    #[test]
    fn staged_files_are_put_in_place_together_or_not_at_all() {
        let (dir, root) = root();
        let (uid, gid) = me();
        let spec = FileSpec { mode: 0o644, uid, gid };
        root.write(Path::new("/a/map"), b"old a\n", spec).unwrap();
        let a = root.stage(Path::new("/a/map"), b"new a\n", spec).unwrap().unwrap();
        let b = root.stage(Path::new("/b/users"), b"new b\n", spec).unwrap().unwrap();
        assert_eq!((a.change, b.change), (Change::Updated, Change::Created));
        assert!(root.stage(Path::new("/a/map"), b"old a\n", spec).unwrap().is_none());
        // nothing is in place before the commit
        assert_eq!(std::fs::read(dir.path().join("a/map")).unwrap(), b"old a\n");
        assert!(!dir.path().join("b/users").exists());
        commit_together(vec![a, b]).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a/map")).unwrap(), b"new a\n");
        assert_eq!(std::fs::read(dir.path().join("b/users")).unwrap(), b"new b\n");
        assert_eq!(root.list_dir(Path::new("/a")).unwrap(), vec![OsString::from("map")]);
        // a dropped stage leaves no temporary file
        drop(root.stage(Path::new("/a/map"), b"never\n", spec).unwrap());
        assert_eq!(root.list_dir(Path::new("/a")).unwrap(), vec![OsString::from("map")]);
        // a rename that fails is reported with the file
        let c = root.stage(Path::new("/a/dir"), b"x", spec).unwrap().unwrap();
        std::fs::create_dir_all(dir.path().join("a/dir/sub")).unwrap();
        let err = commit_together(vec![c]).unwrap_err();
        assert!(err.what.contains("a/dir"), "{err}");
    }

    #[test]
    fn stale_temporary_files_can_be_removed() {
        let (dir, root) = root();
        let (uid, gid) = me();
        let spec = FileSpec { mode: 0o644, uid, gid };
        root.write(Path::new("/d/map"), b"1", spec).unwrap();
        std::fs::write(dir.path().join("d/.map.Ab12Cd.tmp"), b"torn").unwrap();
        std::fs::write(dir.path().join("d/.other.Ab12Cd.tmp"), b"keep").unwrap();
        assert_eq!(
            root.remove_stale_temps(Path::new("/d/map")).unwrap(),
            vec![PathBuf::from("/d/.map.Ab12Cd.tmp")]
        );
        assert_eq!(
            root.list_dir(Path::new("/d")).unwrap(),
            vec![OsString::from(".other.Ab12Cd.tmp"), OsString::from("map")]
        );
        root.ensure_dir(Path::new("/e"), spec).unwrap();
        assert!(root.remove_empty_dir(Path::new("/e")).unwrap());
        assert!(!root.remove_empty_dir(Path::new("/e")).unwrap());
        assert!(
            !root.remove_empty_dir(Path::new("/d")).unwrap(),
            "a directory with files stays"
        );
    }

    #[test]
    fn check_writable_walks_up_to_the_nearest_directory() {
        let (dir, root) = root();
        // nothing on the way exists yet: the root decides
        root.check_writable(Path::new("/usr/edge/properties/x")).unwrap();
        std::fs::create_dir_all(dir.path().join("usr")).unwrap();
        std::fs::write(dir.path().join("usr/edge"), b"file").unwrap();
        let err = root.check_writable(Path::new("/usr/edge/properties/x")).unwrap_err();
        assert!(err.what.contains("edge is not a directory"), "{err}");
        assert!(!dir.path().join("usr/edge/properties").exists());
    }

    #[test]
    fn as_user_creates_files_owned_by_the_user() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to switch the file-system identity");
            return;
        }
        let (dir, root) = root();
        let home = dir.path().join("home/u");
        std::fs::create_dir_all(&home).unwrap();
        nix::unistd::chown(&home, Some(Uid::from_raw(4242)), Some(Gid::from_raw(4242))).unwrap();
        let spec = FileSpec {
            mode: 0o600,
            uid: 4242,
            gid: 4242,
        };
        as_user(4242, 4242, || root.write(Path::new("/home/u/f"), b"x", spec)).unwrap();
        assert_eq!(std::fs::metadata(home.join("f")).unwrap().uid(), 4242);
        // the user cannot write where only root can
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        let err = as_user(4242, 4242, || root.write(Path::new("/etc/x"), b"x", spec)).unwrap_err();
        assert_eq!(err.kind, crate::error::Kind::NotPermitted, "{err}");
    }
}
