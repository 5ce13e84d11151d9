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
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag, openat, readlinkat};
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

/// What kind of file a path names (without following a link at its end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Link,
    Socket,
    /// A FIFO or a device.
    Other,
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

impl From<&std::fs::Metadata> for Meta {
    fn from(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Meta {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
            is_dir: m.is_dir(),
        }
    }
}

const MAX_LINKS: usize = 40;

/// How long a lock is waited for unless configured otherwise (`vnc.lock-wait`).
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

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
    /// `None` when a component is missing and `create` is not given. With
    /// `controlled`, every directory on the way, the root included, must be one
    /// only root can change (see `check_controlled`).
    fn walk(
        &self,
        target: &Path,
        parts: VecDeque<OsString>,
        create: Option<FileSpec>,
        controlled: bool,
    ) -> Result<Option<OwnedFd>> {
        let root = self.open_root()?;
        // The path walked so far, for messages.
        let mut walked: Vec<OsString> = Vec::new();
        if controlled {
            self.check_controlled_dir(&root, &walked)?;
        }
        let mut stack: Vec<OwnedFd> = vec![root];
        let mut queue = parts;
        let mut links = 0;
        while let Some(part) = queue.pop_front() {
            if part == "." || part.is_empty() {
                continue;
            }
            if part == ".." {
                if stack.len() > 1 {
                    stack.pop();
                    walked.pop();
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
                    walked.push(part);
                    if controlled {
                        self.check_controlled_dir(&fd, &walked)?;
                    }
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
                        walked.clear();
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
                    walked.push(part);
                    if controlled {
                        self.check_controlled_dir(&fd, &walked)?;
                    }
                    stack.push(fd);
                }
            }
        }
        Ok(stack.pop())
    }

    /// Refuses a directory (the one `fd` holds, reached by `walked`) that a user
    /// other than root could change: its entries could then be swapped.
    fn check_controlled_dir(&self, fd: &OwnedFd, walked: &[OsString]) -> Result<()> {
        let st = nix::sys::stat::fstat(fd).map_err(|e| Error::io("inspect", &self.dir, e.into()))?;
        let path: PathBuf = std::iter::once(OsString::from("/"))
            .chain(walked.iter().cloned())
            .collect();
        self.controlled(&self.host_path(&path), &st, "directory")
    }

    /// The rule for what root may act on unseen: owned by a trusted user (root,
    /// or the image's owner) and writable by no group and no other user.
    fn controlled(&self, host: &Path, st: &FileStat, what: &str) -> Result<()> {
        self.require_controlled(host, &Meta::from(st), what)
    }

    /// `controlled` for a file whose status the caller has (`what` names it in the error).
    pub fn require_controlled(&self, host: &Path, meta: &Meta, what: &str) -> Result<()> {
        if !self.trusts(meta.uid) {
            return Err(Error::failure(format!(
                "refusing to use the {what} {}: it is owned by uid {}, not by root",
                host.display(),
                meta.uid
            ))
            .why("a user who owns it could swap what root reads or runs from it")
            .hint(format!("if it is meant for root: chown root:root {}", host.display())));
        }
        if meta.mode & 0o022 != 0 {
            return Err(Error::failure(format!(
                "refusing to use the {what} {}: group or others may change it (mode {:04o})",
                host.display(),
                meta.mode
            ))
            .why("whoever may write to it could swap what root reads or runs from it")
            .hint(format!("chmod go-w {}", host.display())));
        }
        Ok(())
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
        let mut parts = Self::components(target);
        let name = parts
            .pop_back()
            .filter(|n| n != "..")
            .ok_or_else(|| Error::bad_input(format!("{} does not name a file", target.display())))?;
        Ok((parts, name))
    }

    /// The components of `target` to walk, `..` kept for `walk`.
    fn components(target: &Path) -> VecDeque<OsString> {
        target
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect()
    }

    /// The parent directory of `target` and its last component; `None` when the
    /// parent is missing and `create` is not given.
    fn parent(&self, target: &Path, create: Option<FileSpec>) -> Result<Option<(OwnedFd, OsString)>> {
        let (parts, name) = Self::split(target)?;
        Ok(self.walk(target, parts, create, false)?.map(|fd| (fd, name)))
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

    /// The kind of `target`, a link at its last component not followed.
    pub fn kind(&self, target: &Path) -> Result<Option<FileKind>> {
        Ok(self.lstat(target)?.map(|st| match st.st_mode & SFlag::S_IFMT.bits() {
            k if k == SFlag::S_IFREG.bits() => FileKind::File,
            k if k == SFlag::S_IFDIR.bits() => FileKind::Dir,
            k if k == SFlag::S_IFLNK.bits() => FileKind::Link,
            k if k == SFlag::S_IFSOCK.bits() => FileKind::Socket,
            _ => FileKind::Other,
        }))
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
        drop(dir);
        self.read_small(target, MAX_READ).map(|r| r.map(|(bytes, _)| bytes))
    }

    /// Opens `target` to read, never through a link at its end and never
    /// blocking (a FIFO), with its status and host path; `None` when missing.
    fn open_to_read(&self, target: &Path) -> Result<Option<(OwnedFd, FileStat, PathBuf)>> {
        let Some((dir, name)) = self.parent(target, None)? else {
            return Ok(None);
        };
        let host = self.host_path(target);
        let fd = match open_nonblocking(&dir, &name) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(unreadable(&host, "it is a symbolic link")),
            Err(e) => return Err(Error::io("read", &host, e.into())),
        };
        let st = nix::sys::stat::fstat(&fd).map_err(|e| Error::io("inspect", &host, e.into()))?;
        Ok(Some((fd, st, host)))
    }

    /// Reads a small file anyone may have put there (a lock file in /tmp): never
    /// through a link, a regular file of at most `max` bytes, with its owner and mode.
    pub fn read_small(&self, target: &Path, max: u64) -> Result<Option<(Vec<u8>, Meta)>> {
        let Some((fd, st, host)) = self.open_to_read(target)? else {
            return Ok(None);
        };
        if let Some(problem) = not_regular(&st).or_else(|| too_large(&st, max)) {
            return Err(unreadable(&host, &problem));
        }
        Ok(Some((read_fd(fd, max, &host)?, Meta::from(&st))))
    }

    /// Opens a regular file to read, never through a link at its end: the file
    /// and its length, for a file too large to read whole first; `None` when missing.
    pub fn open_regular(&self, target: &Path) -> Result<Option<(File, u64)>> {
        let Some((fd, st, host)) = self.open_to_read(target)? else {
            return Ok(None);
        };
        if let Some(problem) = not_regular(&st) {
            return Err(unreadable(&host, &problem));
        }
        Ok(Some((File::from(fd), st.st_size as u64)))
    }

    /// Reads a file in a user's home: never through a link, and only a regular
    /// file with one link, owned by `owner` (in an image also by the image's
    /// owner, who built it), of at most `max` bytes. Anything else (a FIFO that
    /// would block, a huge sparse file, a hard link to a file the user may not
    /// read) is refused with an error naming the file and what is wrong with it.
    /// Call it inside `as_user`, so the kernel checks the user's rights too.
    pub fn read_user_file(&self, target: &Path, owner: u32, max: u64) -> Result<Option<Vec<u8>>> {
        let Some((fd, st, host)) = self.open_to_read(target)? else {
            return Ok(None);
        };
        if let Some(problem) = self.not_users_own(&st, owner).or_else(|| too_large(&st, max)) {
            return Err(unreadable(&host, &problem));
        }
        read_fd(fd, max, &host).map(Some)
    }

    /// Reads the last `tail` bytes of a file in a user's home (a log, which may
    /// be of any size), with the checks of `read_user_file` but the size's; also
    /// returns the file's whole size. Call it inside `as_user` too.
    pub fn read_user_tail(&self, target: &Path, owner: u32, tail: u64) -> Result<Option<(Vec<u8>, u64)>> {
        use std::io::{Seek, SeekFrom};
        let Some((fd, st, host)) = self.open_to_read(target)? else {
            return Ok(None);
        };
        if let Some(problem) = self.not_users_own(&st, owner) {
            return Err(unreadable(&host, &problem));
        }
        let size = st.st_size as u64;
        let mut file = File::from(fd);
        file.seek(SeekFrom::Start(size.saturating_sub(tail)))
            .map_err(|e| Error::io("read", &host, e))?;
        let mut buf = Vec::new();
        // a file that grew since the stat gives its bytes up to the tail's length
        file.take(tail)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("read", &host, e))?;
        Ok(Some((buf, size)))
    }

    /// Why an opened file is not one to read as `owner`'s: not a regular file, another's
    /// (in an image the image's owner, who built it, passes), or with more than one link.
    fn not_users_own(&self, st: &FileStat, owner: u32) -> Option<String> {
        let image_owner = self.trusted.get(1).copied();
        not_regular(st)
            .or_else(|| {
                (st.st_uid != owner && Some(st.st_uid) != image_owner)
                    .then(|| format!("it belongs to uid {}, not to uid {owner}", st.st_uid))
            })
            .or_else(|| (st.st_nlink != 1).then(|| format!("it has {} hard links", st.st_nlink)))
    }

    /// Overwrites a regular file with zeros, syncs it, and removes its name;
    /// `false` when it is absent. Reached through `walk` (no link of a user's on
    /// the way, none at the end), overwritten through the descriptor opened
    /// there, and unlinked from the directory opened there after checking that
    /// the name still is that file: a directory swapped for a link half way
    /// cannot point the overwrite or the removal at another file.
    pub fn shred(&self, target: &Path) -> Result<bool> {
        let Some((dir, name)) = self.parent(target, None)? else {
            return Ok(false);
        };
        let host = self.host_path(target);
        let refuse = |why: &str| {
            Error::failure(format!("refusing to shred {}: {why}", host.display()))
                .hint("name the secret file itself in the answers file")
        };
        let flags = OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = match openat(&dir, name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(false),
            Err(Errno::ELOOP) => return Err(refuse("it is a symbolic link")),
            Err(e) => return Err(Error::io("open", &host, e.into())),
        };
        let st = nix::sys::stat::fstat(&fd).map_err(|e| Error::io("inspect", &host, e.into()))?;
        if let Some(problem) = not_regular(&st) {
            return Err(refuse(&problem));
        }
        if st.st_nlink != 1 {
            return Err(refuse(&format!("it has {} hard links", st.st_nlink)));
        }
        let mut file = File::from(fd);
        let zeros = [0u8; 8192];
        let mut left = u64::try_from(st.st_size).unwrap_or(0);
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])
                .map_err(|e| Error::io("overwrite", &host, e))?;
            left -= n as u64;
        }
        file.sync_all().map_err(|e| Error::io("sync", &host, e))?;
        match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(now) if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino) => {}
            _ => {
                return Err(refuse(
                    "its name was changed while it was overwritten (its content is zeros now)",
                ));
            }
        }
        unlinkat(&dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir)
            .map_err(|e| Error::io("remove", &host, e.into()))?;
        Ok(true)
    }

    /// Reads a UTF-8 text file; `None` when it does not exist.
    pub fn read_string(&self, target: &Path) -> Result<Option<String>> {
        self.read(target)?.map(|b| text(b, &self.host_path(target))).transpose()
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
            Ok(st) => Some((Meta::from(&st), st.st_size)),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(Error::io("inspect", &host, e.into())),
        };
        if let Some((meta, st_size)) = existing {
            let wanted = Meta {
                uid: spec.uid,
                gid: spec.gid,
                mode: spec.mode,
                is_dir: false,
            };
            // the size first: a file of another size (a huge one a user left) is never read
            if meta == wanted && st_size == contents.len() as i64 && self.read(target)?.as_deref() == Some(contents) {
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
            .map_err(|e| Error::io("create a temporary file for", &host, without_path(e)))?;
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

    /// Makes `target` a symbolic link to `points_to` (a link to something else is
    /// replaced; a file or directory there is refused). `Unchanged` when it is one already.
    pub fn symlink(&self, target: &Path, points_to: &Path) -> Result<Change> {
        let (dir, name) = self.parent_created(target, FileSpec::root(0o755))?;
        let dir = self.readable_dir(&dir, "open the directory of", target)?;
        let host = self.host_path(target);
        let change = match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_link(&st) => {
                let current =
                    readlinkat(&dir, name.as_os_str()).map_err(|e| Error::io("read the link", &host, e.into()))?;
                if Path::new(&current) == points_to {
                    return Ok(Change::Unchanged);
                }
                unlinkat(&dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| Error::io("replace the link", &host, e.into()))?;
                Change::Updated
            }
            Ok(_) => {
                return Err(Error::failure(format!(
                    "cannot make {} a link: something else is there",
                    host.display()
                ))
                .hint("move it away and run the command again"));
            }
            Err(Errno::ENOENT) => Change::Created,
            Err(e) => return Err(Error::io("inspect", &host, e.into())),
        };
        nix::unistd::symlinkat(points_to, &dir, name.as_os_str())
            .map_err(|e| Error::io("create the link", &host, e.into()))?;
        if self.durable {
            nix::unistd::fsync(&dir).map_err(|e| Error::io("sync the directory of", &host, e.into()))?;
        }
        Ok(change)
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
    /// exclusive flock on it, held until the returned guard is dropped. Waits at
    /// most `wait` for another holder, then fails naming the lock file and, where
    /// /proc/locks tells, the process that holds it.
    pub fn lock(&self, target: &Path, wait: Duration) -> Result<Flock<File>> {
        let (dir, name) = self.parent_created(target, FileSpec::root(0o755))?;
        let host = self.host_path(target);
        let fd = openat(
            &dir,
            name.as_os_str(),
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| Error::io("open the lock file", &host, e.into()))?;
        let deadline = Instant::now() + wait;
        let mut file = File::from(fd);
        // A blocking flock, so the lock passes to a waiter the moment it is
        // released (polling made 64 concurrent runs twice as slow), cut short
        // by a timer: SIGALRM interrupts it (EINTR) at the deadline.
        let alarm = AlarmAt::new(wait);
        // Without a timer: non-blocking tries, 1 ms apart.
        let how = match alarm {
            Some(_) => FlockArg::LockExclusive,
            None => FlockArg::LockExclusiveNonblock,
        };
        loop {
            match Flock::lock(file, how) {
                Ok(guard) => return Ok(guard),
                Err((f, Errno::EINTR | Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                    if alarm.is_none() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    file = f;
                }
                Err((f, Errno::EINTR | Errno::EWOULDBLOCK)) => return Err(lock_timeout(&host, &f, wait)),
                Err((_, e)) => return Err(Error::io("lock", &host, e.into())),
            }
        }
    }

    /// Refuses `target` unless only root can change it and everything on its
    /// way: every directory from the root down is owned by a trusted user and
    /// not writable by group or others, and so is the file (a regular one) when
    /// it exists. What is missing is not refused: root creates it.
    pub fn check_controlled(&self, target: &Path) -> Result<()> {
        let (parts, name) = Self::split(target)?;
        let Some(dir) = self.walk(target, parts, None, true)? else {
            return Ok(());
        };
        let host = self.host_path(target);
        match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_link(&st) => Err(Error::failure(format!("{} is a symbolic link", host.display()))
                .why("root writes it only as a regular file, so that no link can redirect the write")
                .hint("replace the link with a regular file (or remove it) and run the command again; nothing was changed")),
            Ok(st) => match not_regular(&st) {
                Some(problem) => Err(unreadable(&host, &problem)),
                None => self.controlled(&host, &st, "file"),
            },
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(Error::io("inspect", &host, e.into())),
        }
    }

    /// Checks again, just before root runs it, that `target` is still the file
    /// `checked` was opened from, and that it and every directory above it are
    /// still root's alone: once they are, nobody else can swap it before the run.
    pub fn recheck_controlled(&self, target: &Path, checked: &OwnedFd) -> Result<()> {
        let host = self.host_path(target);
        let (parts, name) = Self::split(target)?;
        let dir = self
            .walk(target, parts, None, true)?
            .ok_or_else(|| Error::failure(format!("{} is gone", host.display())))?;
        let fd = open_nonblocking(&dir, &name).map_err(|e| Error::io("open", &host, e.into()))?;
        let now = nix::sys::stat::fstat(&fd).map_err(|e| Error::io("inspect", &host, e.into()))?;
        let then = nix::sys::stat::fstat(checked).map_err(|e| Error::io("inspect", &host, e.into()))?;
        if (now.st_dev, now.st_ino) != (then.st_dev, then.st_ino) {
            return Err(
                Error::failure(format!("{} was replaced after it was checked", host.display()))
                    .hint("run the command again; if it happens again, find what changes that file"),
            );
        }
        self.controlled(&host, &now, "file")
    }

    /// Opens the directory `target` for listing, refusing it unless only root can
    /// change it and every directory above it (`check_controlled`); `None` when missing.
    pub fn open_controlled_dir(&self, target: &Path) -> Result<Option<ControlledDir>> {
        let mut parts = Self::split(target).map(|(mut p, n)| {
            p.push_back(n);
            p
        })?;
        parts.retain(|p| !p.is_empty());
        Ok(self.walk(target, parts, None, true)?.map(|fd| ControlledDir {
            fd,
            path: target.to_path_buf(),
        }))
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
            if let Some(fd) = self.walk(target, parts.clone(), None, false)? {
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
        let Some(fd) = self.walk(target, Self::components(target), None, false)? else {
            return Ok(Vec::new());
        };
        self.list_fd(&fd, target)
    }

    /// Names in the directory behind `fd` (an O_PATH descriptor of `target`).
    fn list_fd(&self, fd: &OwnedFd, target: &Path) -> Result<Vec<OsString>> {
        let real = self.readable_dir(fd, "list", target)?;
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

/// A directory only root can change, down from the root (`Root::open_controlled_dir`).
pub struct ControlledDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// An entry of a `ControlledDir`, opened without following a link.
pub enum Entry {
    /// A regular file, open for reading, with its status as opened.
    File(OwnedFd, Meta),
    /// A directory, a FIFO, a socket or a device.
    Other,
    /// A symbolic link, never followed.
    Link,
}

impl ControlledDir {
    /// The names in the directory, sorted.
    pub fn names(&self, root: &Root) -> Result<Vec<OsString>> {
        root.list_fd(&self.fd, &self.path)
    }

    /// Opens an entry, so what is checked is what is used.
    pub fn open(&self, root: &Root, name: &OsStr) -> Result<Option<Entry>> {
        let host = root.host_path(&self.path.join(name));
        let fd = match open_nonblocking(&self.fd, name) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Ok(Some(Entry::Link)),
            Err(e) => return Err(Error::io("open", &host, e.into())),
        };
        let st = nix::sys::stat::fstat(&fd).map_err(|e| Error::io("inspect", &host, e.into()))?;
        Ok(Some(match not_regular(&st) {
            None => Entry::File(fd, Meta::from(&st)),
            Some(_) => Entry::Other,
        }))
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
            .map_err(|e| Error::io("replace", &host, without_path(e.error)))?;
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
            // As in `as_user`: renames made as a user use no group of root's.
            // The raw call, which is async-signal-safe; root needs no groups after.
            if switch_identity {
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
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

/// The OS error alone: tempfile's errors name the directory as edge-setup
/// opened it (`/proc/self/fd/N`), which means nothing to the user; the
/// message names the user's path instead.
fn without_path(e: std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::from(e.kind()),
    }
}

fn is_link(st: &FileStat) -> bool {
    (st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK.bits()
}

/// The bytes of a file as text, or an error naming it.
pub fn text(bytes: Vec<u8>, host: &Path) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::failure(format!("{} is not a UTF-8 text file", host.display())))
}

/// What root reads at most from any file (dpkg's status file is a few MiB).
pub const MAX_READ: u64 = 64 << 20;

/// Opens a file for reading without following a link at `name` and without
/// blocking on a FIFO or a device.
fn open_nonblocking(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
}

/// Why an opened file is not a regular file (a FIFO, a device...), if it is not.
fn not_regular(st: &FileStat) -> Option<String> {
    let kind = st.st_mode & SFlag::S_IFMT.bits();
    if kind == SFlag::S_IFREG.bits() {
        return None;
    }
    let what = match kind {
        k if k == SFlag::S_IFIFO.bits() => "a FIFO (named pipe)",
        k if k == SFlag::S_IFDIR.bits() => "a directory",
        k if k == SFlag::S_IFSOCK.bits() => "a socket",
        k if k == SFlag::S_IFCHR.bits() || k == SFlag::S_IFBLK.bits() => "a device",
        _ => "not a regular file",
    };
    Some(format!("it is {what}, not a regular file"))
}

fn too_large(st: &FileStat, max: u64) -> Option<String> {
    (st.st_size as u64 > max).then(|| format!("it is {} bytes long, more than the {max} allowed", st.st_size))
}

fn unreadable(host: &Path, problem: &str) -> Error {
    Error::failure(format!("refusing to read {}: {problem}", host.display()))
        .hint("replace it with a regular file of the expected content (or remove it) and run the command again; nothing was changed")
}

/// Reads at most `max` bytes (a file may grow after its size was checked).
fn read_fd(fd: OwnedFd, max: u64, host: &Path) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    File::from(fd)
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", host, e))?;
    if buf.len() as u64 > max {
        return Err(unreadable(host, &format!("it is more than the {max} bytes allowed")));
    }
    Ok(buf)
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

/// Runs `f` with the file-system identity of `uid`/`gid` (Linux fsuid) and no
/// supplementary groups, so that files in a user's home are created by that
/// user and the kernel checks every access with that user's rights, not with
/// root's groups (a hard link to a file of group root would otherwise be
/// readable). Only root can switch; anyone else already acts as themselves.
pub fn as_user<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> T {
    if !nix::unistd::geteuid().is_root() || uid == 0 {
        return f();
    }
    let groups = nix::unistd::getgroups().unwrap_or_default();
    let dropped = nix::unistd::setgroups(&[]).is_ok();
    let old_gid = nix::unistd::setfsgid(Gid::from_raw(gid));
    let old_uid = nix::unistd::setfsuid(Uid::from_raw(uid));
    let out = f();
    nix::unistd::setfsuid(old_uid);
    nix::unistd::setfsgid(old_gid);
    if dropped {
        nix::unistd::setgroups(&groups).expect("root can restore its own supplementary groups");
    }
    out
}

/// A timer that interrupts a blocking call of this thread (and no other: the
/// signal is aimed at it) with SIGALRM after a wait, and again every 20 ms
/// after it, in case the first came just before the call blocked. The handler
/// does nothing: the point is the EINTR. Dropping it deletes the timer,
/// consumes a signal still pending (so it interrupts nothing later) and puts
/// the previous handler back.
struct AlarmAt {
    timer: Option<nix::sys::timer::Timer>,
    previous: Option<nix::sys::signal::SigAction>,
}

impl AlarmAt {
    /// `None` when no timer could be made (the caller polls instead).
    fn new(after: Duration) -> Option<AlarmAt> {
        use nix::sys::signal::{SaFlags, SigAction, SigEvent, SigHandler, SigSet, SigevNotify, Signal, sigaction};
        use nix::sys::time::TimeSpec;
        use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
        extern "C" fn wake(_: nix::libc::c_int) {}
        // no SA_RESTART: the blocked call must return
        let action = SigAction::new(SigHandler::Handler(wake), SaFlags::empty(), SigSet::empty());
        // SAFETY: the handler does nothing, which is async-signal-safe.
        let previous = unsafe { sigaction(Signal::SIGALRM, &action) }.ok();
        let mut alarm = AlarmAt { timer: None, previous };
        let event = SigEvent::new(SigevNotify::SigevThreadId {
            signal: Signal::SIGALRM,
            thread_id: nix::unistd::gettid().as_raw(),
            si_value: 0,
        });
        let mut timer = Timer::new(nix::time::ClockId::CLOCK_MONOTONIC, event).ok()?;
        let first = TimeSpec::from_duration(after.max(Duration::from_micros(1)));
        let every = TimeSpec::from_duration(Duration::from_millis(20));
        timer
            .set(Expiration::IntervalDelayed(first, every), TimerSetTimeFlags::empty())
            .ok()?;
        alarm.timer = Some(timer);
        Some(alarm)
    }
}

impl Drop for AlarmAt {
    fn drop(&mut self) {
        use nix::libc;
        use nix::sys::signal::{SigSet, Signal};
        self.timer.take();
        let mut alarm = SigSet::empty();
        alarm.add(Signal::SIGALRM);
        if alarm.thread_block().is_ok() {
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: takes a pending SIGALRM off this thread, if there is one; waits not at all.
            unsafe { libc::sigtimedwait(alarm.as_ref(), std::ptr::null_mut(), &zero) };
            let _ = alarm.thread_unblock();
        }
        if let Some(previous) = &self.previous {
            // SAFETY: puts back the handler that was there before.
            let _ = unsafe { nix::sys::signal::sigaction(Signal::SIGALRM, previous) };
        }
    }
}

/// The error for a lock still held after the wait: the lock file, the holder
/// where /proc/locks names it, and what to do.
fn lock_timeout(host: &Path, file: &File, wait: Duration) -> Error {
    let holder = nix::sys::stat::fstat(file)
        .ok()
        .and_then(|st| lock_holder(&std::fs::read_to_string("/proc/locks").ok()?, &st))
        .map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .ok()
                .map(|c| c.replace('\0', " ").trim().to_string())
                .filter(|c| !c.is_empty());
            match comm {
                Some(c) => format!("process {pid} ({c})"),
                None => format!("process {pid}"),
            }
        });
    Error::failure(format!(
        "another edge-setup holds the lock {} and did not release it within {} s",
        host.display(),
        wait.as_secs()
    ))
    .why(match &holder {
        Some(h) => format!("it is held by {h}"),
        None => "the process that holds it could not be told".to_string(),
    })
    .hint(match holder {
        Some(_) => "wait for that process to finish (or end it) and run the command again; nothing was changed",
        None => "wait for the other edge-setup to finish and run the command again; nothing was changed",
    })
}

/// The pid /proc/locks names for a flock on the file with `st`'s device and inode.
fn lock_holder(locks: &str, st: &FileStat) -> Option<u32> {
    let (major, minor) = (nix::sys::stat::major(st.st_dev), nix::sys::stat::minor(st.st_dev));
    let wanted = format!("{major:02x}:{minor:02x}:{}", st.st_ino);
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; blocked waiters have "->"
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&wanted.as_str()))
            .then(|| fields.get(4)?.parse().ok())
            .flatten()
    })
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
    #[ignore = "needs root"]
    fn untrusted_links_are_not_followed() {
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
    #[ignore = "needs root"]
    fn as_user_creates_files_owned_by_the_user() {
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

    /// Acting as a user, root's supplementary groups (group 0 among them) give no
    /// access: a user's hard link to a file of group root reads nothing.
    #[test]
    #[ignore = "needs root"]
    fn as_user_drops_roots_supplementary_groups() {
        let (dir, _) = root();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"group root only").unwrap();
        std::os::unix::fs::chown(&secret, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let before = nix::unistd::getgroups().unwrap();
        nix::unistd::setgroups(&[Gid::from_raw(0)]).unwrap();
        let read = as_user(4242, 4242, || std::fs::read(&secret));
        assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            nix::unistd::getgroups().unwrap(),
            vec![Gid::from_raw(0)],
            "groups are restored"
        );
        nix::unistd::setgroups(&before).unwrap();
    }

    fn mkfifo(path: &Path) {
        nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o644)).unwrap();
    }

    #[test]
    fn reads_never_block_on_a_fifo_nor_take_a_huge_file() {
        let (dir, root) = root();
        let (uid, _) = me();
        mkfifo(&dir.path().join("fifo"));
        let err = root.read(Path::new("/fifo")).unwrap_err();
        assert!(
            err.to_string().contains("a FIFO (named pipe), not a regular file"),
            "{err}"
        );
        let err = root.read_user_file(Path::new("/fifo"), uid, 64).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        // sparse: 2 GiB long, nothing on disk
        let big = File::create(dir.path().join("big")).unwrap();
        big.set_len(2 << 30).unwrap();
        let err = root.read_user_file(Path::new("/big"), uid, 64 * 1024).unwrap_err();
        assert!(
            err.to_string()
                .contains("2147483648 bytes long, more than the 65536 allowed"),
            "{err}"
        );
        assert!(root.read(Path::new("/big")).is_err());
    }

    #[test]
    fn a_users_file_must_be_theirs_alone_and_not_a_link() {
        let (dir, root) = root();
        let (uid, _) = me();
        std::fs::write(dir.path().join("config"), b"geometry=1x1\n").unwrap();
        assert_eq!(
            root.read_user_file(Path::new("/config"), uid, 64).unwrap().as_deref(),
            Some(&b"geometry=1x1\n"[..])
        );
        assert_eq!(root.read_user_file(Path::new("/absent"), uid, 64).unwrap(), None);
        std::fs::hard_link(dir.path().join("config"), dir.path().join("other")).unwrap();
        let err = root.read_user_file(Path::new("/config"), uid, 64).unwrap_err();
        assert!(err.to_string().contains("it has 2 hard links"), "{err}");
        std::fs::remove_file(dir.path().join("other")).unwrap();
        std::os::unix::fs::symlink("config", dir.path().join("link")).unwrap();
        let err = root.read_user_file(Path::new("/link"), uid, 64).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(dir.path().join("config"), Some(4242), None).unwrap();
            let err = root.read_user_file(Path::new("/config"), 4343, 64).unwrap_err();
            assert!(
                err.to_string().contains("belongs to uid 4242, not to uid 4343"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_held_lock_is_waited_for_then_named_with_its_holder() {
        let (dir, root) = root();
        let target = Path::new("/run/x.lock");
        let held = root.lock(target, DEFAULT_LOCK_WAIT).unwrap();
        let started = Instant::now();
        let err = root.lock(target, Duration::from_millis(300)).unwrap_err();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&dir.path().join("run/x.lock").display().to_string()),
            "{text}"
        );
        assert!(
            text.contains(&format!("held by process {}", std::process::id())),
            "{text}"
        );
        // the timer is gone and no SIGALRM is left to interrupt what comes next
        std::thread::sleep(Duration::from_millis(60));
        let mut pending = std::mem::MaybeUninit::<nix::libc::sigset_t>::uninit();
        // SAFETY: sigpending fills the set it is given, which is then read.
        let alarm_pending = unsafe {
            nix::libc::sigpending(pending.as_mut_ptr());
            nix::libc::sigismember(pending.as_ptr(), nix::libc::SIGALRM)
        };
        assert_eq!(alarm_pending, 0);
        drop(held);
        root.lock(target, Duration::from_millis(300)).unwrap();
    }

    #[test]
    fn errors_never_name_the_descriptor_paths_edge_setup_opens() {
        let e = tempfile::Builder::new()
            .tempfile_in("/proc/self/fd/999999")
            .unwrap_err();
        assert!(e.to_string().contains("/proc/self/fd"), "{e}");
        let e = Error::io("create a temporary file for", Path::new("/etc/x"), without_path(e));
        assert!(!e.to_string().contains("/proc/self/fd"), "{e}");
        assert!(e.to_string().contains("/etc/x"), "{e}");
    }

    #[test]
    fn a_checked_file_replaced_before_it_runs_is_refused() {
        let (dir, root) = root();
        std::fs::create_dir_all(dir.path().join("etc/hooks")).unwrap();
        std::fs::write(dir.path().join("etc/hooks/10-a"), b"#!/bin/sh\n").unwrap();
        let target = Path::new("/etc/hooks/10-a");
        let checked: OwnedFd = File::open(dir.path().join("etc/hooks/10-a")).unwrap().into();
        root.recheck_controlled(target, &checked).unwrap();
        std::fs::write(dir.path().join("etc/hooks/.new"), b"#!/bin/sh\nevil\n").unwrap();
        std::fs::rename(dir.path().join("etc/hooks/.new"), dir.path().join("etc/hooks/10-a")).unwrap();
        let err = root.recheck_controlled(target, &checked).unwrap_err();
        assert!(
            err.what.ends_with("/etc/hooks/10-a was replaced after it was checked"),
            "{err}"
        );
    }

    #[test]
    fn controlled_paths_refuse_what_a_user_could_change() {
        let (dir, root) = root();
        std::fs::create_dir_all(dir.path().join("etc/tigervnc")).unwrap();
        std::fs::write(dir.path().join("etc/tigervnc/vncserver.users"), ":1=admin\n").unwrap();
        let target = Path::new("/etc/tigervnc/vncserver.users");
        std::fs::set_permissions(dir.path().join("etc/tigervnc"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            dir.path().join(&target.to_str().unwrap()[1..]),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        root.check_controlled(target).unwrap();
        root.check_controlled(Path::new("/etc/absent/file")).unwrap();
        std::fs::set_permissions(
            dir.path().join("etc/tigervnc/vncserver.users"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        let err = root.check_controlled(target).unwrap_err();
        assert!(
            err.to_string().contains("group or others may change it (mode 0666)"),
            "{err}"
        );
        std::fs::set_permissions(
            dir.path().join("etc/tigervnc/vncserver.users"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::set_permissions(dir.path().join("etc"), std::fs::Permissions::from_mode(0o775)).unwrap();
        let err = root.check_controlled(target).unwrap_err();
        assert!(
            err.to_string()
                .contains("/etc: group or others may change it (mode 0775)"),
            "{err}"
        );
        std::fs::set_permissions(dir.path().join("etc"), std::fs::Permissions::from_mode(0o755)).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(dir.path().join("etc/tigervnc"), Some(4242), None).unwrap();
            let err = root.check_controlled(target).unwrap_err();
            assert!(
                err.to_string().contains("it is owned by uid 4242, not by root"),
                "{err}"
            );
        }
    }

    const LOCKS_NEAR: &[&str] = &[
        "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF",
        "1: -> FLOCK  ADVISORY  WRITE 99 08:01:5678 0 EOF",
        "2: POSIX  ADVISORY  WRITE 812 00:1a:77 0 EOF",
        "3: FLOCK  ADVISORY  WRITE x 08:01:5678 0 EOF",
        "4: FLOCK ADVISORY WRITE 99999999999 08:01:5678",
        "5: OFDLCK ADVISORY  READ  -1 00:05:3 0 EOF",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz::CASES))]
        /// Any /proc/locks gives the holder of a FLOCK line on the file, or none.
        #[test]
        fn any_proc_locks_names_a_holder_of_the_file_or_none(text in crate::fuzz::text(LOCKS_NEAR)) {
            let mut st = nix::sys::stat::stat("/").unwrap();
            st.st_dev = nix::sys::stat::makedev(8, 1);
            st.st_ino = 5678;
            if let Some(pid) = lock_holder(&text, &st) {
                let line = format!(" {pid} 08:01:5678");
                proptest::prop_assert!(text.lines().any(|l| l.contains("FLOCK") && l.split_whitespace().collect::<Vec<_>>().join(" ").contains(line.trim_start())), "{pid}");
            }
        }
    }
}
