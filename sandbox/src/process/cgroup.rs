//! Control groups for the process backend: one per session (memory, pids and cpu limits) with
//! one leaf per command (the unit that is killed), on cgroup v1, v2 or both (hybrid hosts).
//!
//! Which hierarchy serves what is read at run time from `/proc/self/mountinfo`: a controller
//! mounted as v1 is used there, otherwise v2 if its root offers it. Killing prefers v2's
//! `cgroup.kill`; on v1 the leaf is frozen, every pid gets SIGKILL, and it is thawed.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Limits;

/// The folder under each hierarchy's root that holds plancd's groups.
const BASE: &str = "plancd";

/// Where each job is done.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The v2 mount, when there is one (used for killing and for the controllers it has).
    v2: Option<PathBuf>,
    memory: Option<Place>,
    pids: Option<Place>,
    cpu: Option<Place>,
    freezer: Option<PathBuf>,
}

/// A controller's hierarchy.
#[derive(Debug, Clone, PartialEq)]
enum Place {
    V1(PathBuf),
    V2(PathBuf),
}

impl Place {
    fn root(&self) -> &Path {
        match self {
            Place::V1(p) | Place::V2(p) => p,
        }
    }
}

impl Layout {
    /// Reads the mounts. `None` when no usable hierarchy exists or it is not writable.
    pub fn detect() -> Option<Layout> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let layout = Layout::from_mountinfo(&mountinfo, |p| fs::read_to_string(p).ok());
        let writable = layout.roots().iter().all(|root| ensure_dir(&root.join(BASE)).is_ok());
        (writable && layout.kills()).then_some(layout)
    }

    fn from_mountinfo(mountinfo: &str, read: impl Fn(&Path) -> Option<String>) -> Layout {
        let mut layout = Layout::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let mount_point = left.split(' ').nth(4).map(PathBuf::from);
            let mut fields = right.split(' ');
            let (Some(fstype), Some(mount_point)) = (fields.next(), mount_point) else { continue };
            let options = fields.nth(1).unwrap_or("");
            match fstype {
                "cgroup2" if layout.v2.is_none() => layout.v2 = Some(mount_point),
                "cgroup" => {
                    let has = |c: &str| options.split(',').any(|o| o == c);
                    let v1 = |slot: &mut Option<Place>, c: &str| {
                        if has(c) && slot.is_none() {
                            *slot = Some(Place::V1(mount_point.clone()));
                        }
                    };
                    v1(&mut layout.memory, "memory");
                    v1(&mut layout.pids, "pids");
                    v1(&mut layout.cpu, "cpu");
                    if has("freezer") && layout.freezer.is_none() {
                        layout.freezer = Some(mount_point.clone());
                    }
                }
                _ => {}
            }
        }
        if let Some(v2) = layout.v2.clone() {
            let offered = read(&v2.join("cgroup.controllers")).unwrap_or_default();
            let offers = |c: &str| offered.split_whitespace().any(|o| o == c);
            for (slot, c) in [(&mut layout.memory, "memory"), (&mut layout.pids, "pids"), (&mut layout.cpu, "cpu")] {
                if slot.is_none() && offers(c) {
                    *slot = Some(Place::V2(v2.clone()));
                }
            }
        }
        layout
    }

    /// Every hierarchy root a group needs a folder in.
    fn roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = Vec::new();
        let places = [&self.memory, &self.pids, &self.cpu].into_iter().flatten().map(|p| p.root().to_path_buf());
        for root in self.v2.iter().cloned().chain(places).chain(self.freezer.iter().cloned()) {
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
        roots
    }

    /// Whether a whole group can be killed (v2, or a v1 freezer).
    fn kills(&self) -> bool {
        self.v2.is_some() || self.freezer.is_some()
    }

    /// Whether memory, pids and cpu are all limited.
    pub fn limits_everything(&self) -> bool {
        self.memory.is_some() && self.pids.is_some() && self.cpu.is_some()
    }

    /// Creates a session's group with its limits.
    pub fn session(&self, id: &str, limits: &Limits) -> io::Result<SessionGroup> {
        self.enable_v2_controllers();
        let dirs: Vec<PathBuf> = self.roots().iter().map(|r| r.join(BASE).join(id)).collect();
        for dir in &dirs {
            ensure_dir(dir)?;
        }
        let group = SessionGroup { layout: self.clone(), id: id.to_owned(), dirs };
        group.apply(limits)?;
        Ok(group)
    }

    /// Removes the session groups `stale` names (left by a plancd that died), killing what
    /// still runs in them. Returns how many folders went.
    pub fn sweep(&self, stale: impl Fn(&str) -> bool) -> usize {
        let mut removed = 0;
        for root in self.roots() {
            let Ok(sessions) = fs::read_dir(root.join(BASE)) else { continue };
            for session in sessions.flatten().filter(|e| e.path().is_dir() && stale(&e.file_name().to_string_lossy())) {
                let leaves = fs::read_dir(session.path()).into_iter().flatten().flatten().filter(|e| e.path().is_dir());
                for leaf in leaves {
                    let procs = fs::read_to_string(leaf.path().join("cgroup.procs")).unwrap_or_default();
                    for pid in procs.lines().filter_map(|l| rustix::process::Pid::from_raw(l.trim().parse().ok()?)) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                    let _ = remove_group(&leaf.path());
                }
                if remove_group(&session.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// On v2, limits need the controllers enabled from the root down to plancd's folder.
    fn enable_v2_controllers(&self) {
        let Some(v2) = &self.v2 else { return };
        let wanted: Vec<&str> = [(&self.memory, "+memory"), (&self.pids, "+pids"), (&self.cpu, "+cpu")]
            .into_iter()
            .filter(|(p, _)| matches!(p, Some(Place::V2(_))))
            .map(|(_, c)| c)
            .collect();
        for dir in [v2.clone(), v2.join(BASE)] {
            for c in &wanted {
                // Already enabled, or refused by the host's setup: limits then fail loudly below.
                let _ = fs::write(dir.join("cgroup.subtree_control"), c);
            }
        }
    }
}

fn ensure_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// A session's group: one folder per hierarchy.
#[derive(Debug)]
pub struct SessionGroup {
    layout: Layout,
    id: String,
    dirs: Vec<PathBuf>,
}

impl SessionGroup {
    fn dir(&self, root: &Path) -> PathBuf {
        root.join(BASE).join(&self.id)
    }

    fn apply(&self, limits: &Limits) -> io::Result<()> {
        let mem = limits.memory_mb.saturating_mul(1 << 20);
        match &self.layout.memory {
            Some(Place::V1(r)) => {
                fs::write(self.dir(r).join("memory.limit_in_bytes"), mem.to_string())?;
                // Absent without swap accounting.
                let _ = fs::write(self.dir(r).join("memory.memsw.limit_in_bytes"), mem.to_string());
            }
            Some(Place::V2(r)) => {
                fs::write(self.dir(r).join("memory.max"), mem.to_string())?;
                let _ = fs::write(self.dir(r).join("memory.swap.max"), "0");
            }
            None => {}
        }
        if let Some(p) = &self.layout.pids {
            fs::write(self.dir(p.root()).join("pids.max"), limits.pids.max(1).to_string())?;
        }
        let period = 100_000u64;
        let quota = ((limits.cpus.max(0.01) * period as f64) as u64).max(1000);
        match &self.layout.cpu {
            Some(Place::V1(r)) => {
                fs::write(self.dir(r).join("cpu.cfs_period_us"), period.to_string())?;
                fs::write(self.dir(r).join("cpu.cfs_quota_us"), quota.to_string())?;
            }
            Some(Place::V2(r)) => fs::write(self.dir(r).join("cpu.max"), format!("{quota} {period}"))?,
            None => {}
        }
        Ok(())
    }

    /// How many processes the memory controller has killed in the leaf `name` (v1 counts a
    /// kill in the victim's own group only; v2 counts it up the tree too).
    pub fn oom_kills(&self, name: &str) -> u64 {
        let (file, key) = match &self.layout.memory {
            Some(Place::V1(r)) => (self.dir(r).join(name).join("memory.oom_control"), "oom_kill"),
            Some(Place::V2(r)) => (self.dir(r).join(name).join("memory.events"), "oom_kill"),
            None => return 0,
        };
        let text = fs::read_to_string(file).unwrap_or_default();
        let counter = text.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()));
        counter.unwrap_or_else(|| self.v1_failcnt())
    }

    /// Older v1 kernels have no oom_kill counter; the session hitting its limit is the next
    /// best sign.
    fn v1_failcnt(&self) -> u64 {
        let Some(Place::V1(r)) = &self.layout.memory else { return 0 };
        fs::read_to_string(self.dir(r).join("memory.failcnt")).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
    }

    /// Creates the leaf a command runs in.
    pub fn leaf(&self, name: &str) -> io::Result<Leaf> {
        let dirs: Vec<PathBuf> = self.dirs.iter().map(|d| d.join(name)).collect();
        for dir in &dirs {
            ensure_dir(dir)?;
        }
        let kill = match (&self.layout.v2, &self.layout.freezer) {
            (Some(v2), _) if self.dir(v2).join(name).join("cgroup.kill").exists() => Kill::V2(self.dir(v2).join(name)),
            (_, Some(freezer)) => Kill::Freezer(self.dir(freezer).join(name)),
            (Some(v2), None) => Kill::Signal(self.dir(v2).join(name)),
            (None, None) => Kill::Signal(dirs[0].clone()),
        };
        Ok(Leaf { dirs, kill })
    }

    /// Removes the session's folders (after every leaf is gone).
    pub fn remove(&self) {
        for dir in &self.dirs {
            let _ = remove_group(dir);
        }
    }
}

/// How a leaf is killed.
#[derive(Debug, Clone)]
enum Kill {
    V2(PathBuf),
    Freezer(PathBuf),
    Signal(PathBuf),
}

/// The group of one command.
#[derive(Debug, Clone)]
pub struct Leaf {
    dirs: Vec<PathBuf>,
    kill: Kill,
}

impl Leaf {
    /// Opens every `cgroup.procs` for the child to write itself into before it runs.
    pub fn procs_files(&self) -> io::Result<Vec<OwnedFd>> {
        self.dirs.iter().map(|d| Ok(fs::OpenOptions::new().write(true).open(d.join("cgroup.procs"))?.into())).collect()
    }

    fn tracking_dir(&self) -> &Path {
        match &self.kill {
            Kill::V2(d) | Kill::Freezer(d) | Kill::Signal(d) => d,
        }
    }

    /// The pids in the leaf.
    pub fn pids(&self) -> Vec<i32> {
        let text = fs::read_to_string(self.tracking_dir().join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// Whether no process is left.
    pub fn is_empty(&self) -> bool {
        self.pids().is_empty()
    }

    /// Kills every process in the leaf, daemons included, and waits (up to `patience`) for
    /// the leaf to be empty. Returns whether it is.
    pub fn kill_all(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        // Exiting processes leave the group within microseconds: poll fast, then back off.
        let mut pause = Duration::from_micros(100);
        loop {
            match &self.kill {
                Kill::V2(d) => {
                    let _ = fs::write(d.join("cgroup.kill"), "1");
                }
                Kill::Freezer(d) => freeze_and_kill(d, self),
                Kill::Signal(_) => self.signal_all(),
            }
            if self.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    fn signal_all(&self) {
        for pid in self.pids() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }

    /// Removes the leaf's folders; the leaf must be empty.
    pub fn remove(&self) {
        for dir in &self.dirs {
            let _ = remove_group(dir);
        }
    }
}

/// Freezes the leaf so nothing forks while pids are collected, kills them all, thaws.
fn freeze_and_kill(dir: &Path, leaf: &Leaf) {
    let state = dir.join("freezer.state");
    let _ = fs::write(&state, "FROZEN");
    let until = Instant::now() + Duration::from_millis(500);
    while fs::read_to_string(&state).map(|s| s.trim() == "FREEZING").unwrap_or(false) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    leaf.signal_all();
    let _ = fs::write(&state, "THAWED");
}

/// rmdir, retried briefly: the kernel empties a group a moment after its last process dies.
fn remove_group(dir: &Path) -> io::Result<()> {
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
42 31 0:39 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_hosts_limit_on_v1_and_kill_on_v2() {
        let layout = Layout::from_mountinfo(HYBRID, |_| Some(String::new()));
        assert_eq!(layout.memory, Some(Place::V1("/sys/fs/cgroup/memory".into())));
        assert_eq!(layout.cpu, Some(Place::V1("/sys/fs/cgroup/cpu".into())));
        assert_eq!(layout.v2, Some("/sys/fs/cgroup/unified".into()));
        assert!(layout.kills() && layout.limits_everything());
        assert_eq!(layout.roots().len(), 5);
    }

    #[test]
    fn pure_v2_hosts_use_the_controllers_the_root_offers() {
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let layout = Layout::from_mountinfo(v2, |_| Some("cpuset cpu io memory pids".into()));
        assert_eq!(layout.memory, Some(Place::V2("/sys/fs/cgroup".into())));
        assert_eq!(layout.pids, Some(Place::V2("/sys/fs/cgroup".into())));
        assert_eq!(layout.roots(), vec![PathBuf::from("/sys/fs/cgroup")]);
    }

    #[test]
    fn sessions_get_limits_and_leaves_are_killed_whole() {
        let Some(layout) = Layout::detect() else {
            eprintln!("skipping: no writable cgroup hierarchy");
            return;
        };
        kill_a_sleeper(&layout, "unit", false);
    }

    #[test]
    fn on_v1_alone_leaves_are_killed_through_the_freezer() {
        let Some(detected) = Layout::detect() else {
            eprintln!("skipping: no writable cgroup hierarchy");
            return;
        };
        let Some(freezer) = detected.freezer.clone() else {
            eprintln!("skipping: no v1 freezer here");
            return;
        };
        let v1_only = Layout { v2: None, freezer: Some(freezer), ..detected };
        kill_a_sleeper(&v1_only, "unit-v1", true);
    }

    fn kill_a_sleeper(layout: &Layout, prefix: &str, through_freezer: bool) {
        let id = format!("{prefix}-{}", std::process::id());
        let limits = Limits { memory_mb: 64, pids: 32, cpus: 0.5, ..Limits::default() };
        let group = layout.session(&id, &limits).expect("a session group");
        if let Some(pids) = &layout.pids {
            assert_eq!(fs::read_to_string(group.dir(pids.root()).join("pids.max")).expect("pids.max").trim(), "32");
        }
        let leaf = group.leaf("x0").expect("a leaf");
        assert_eq!(matches!(leaf.kill, Kill::Freezer(_)), through_freezer);
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep runs");
        for f in leaf.procs_files().expect("procs files") {
            fs::write(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f)), child.id().to_string()).expect("moved");
        }
        assert_eq!(leaf.pids(), vec![child.id() as i32]);
        assert!(leaf.kill_all(Duration::from_secs(5)));
        assert!(child.wait().expect("reaped").code().is_none());
        leaf.remove();
        group.remove();
    }
}
