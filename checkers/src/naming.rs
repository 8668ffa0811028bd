//! Names other systems know our work by: Koji targets, Testing Farm composes and tmt distros,
//! flag names and uids.

use sha2::{Digest, Sha256};

/// Longest comment Pagure keeps on a flag.
pub const FLAG_COMMENT_MAX_CHARS: usize = 140;

/// Longest flag uid Pagure accepts.
pub const FLAG_UID_MAX_CHARS: usize = 32;

/// The subject of the scratch build's flag, where tests use their name.
pub const SCRATCH_BUILD_SUBJECT: &str = "scratch build";

/// The release a dist-git branch builds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Release {
    /// `rawhide`, or its old name `main`.
    Rawhide,
    /// `fNN`.
    Fedora(u32),
    /// `epelN`, or `epelN.M` for the trailing minor versions of EPEL 10 and later.
    Epel { major: u32, minor: Option<u32> },
    /// `eln`, for packages that build ELN from their own branch.
    Eln,
}

impl Release {
    /// `None` for branches that are not releases (feature branches, `stable`, ...).
    pub fn from_branch(branch: &str) -> Option<Release> {
        match branch {
            "main" | "rawhide" => Some(Release::Rawhide),
            "eln" => Some(Release::Eln),
            _ => {
                if let Some(version) = branch.strip_prefix("epel") {
                    let (major, minor) = match version.split_once('.') {
                        Some((major, minor)) => (major, Some(number(minor)?)),
                        None => (version, None),
                    };
                    Some(Release::Epel {
                        major: number(major)?,
                        minor,
                    })
                } else {
                    branch
                        .strip_prefix('f')
                        .and_then(number)
                        .map(Release::Fedora)
                }
            }
        }
    }
}

/// Plain decimal digits only; `str::parse` would also take a sign.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The branch as packagers know it: `main` is the old name of `rawhide`.
pub fn display_branch(branch: &str) -> String {
    match branch {
        "main" => "rawhide".to_owned(),
        other => other.to_owned(),
    }
}

/// The Koji target a scratch build of a pull request against `branch` uses.
///
/// Koji has a target named after every release branch (`rawhide`, `f42`, `epel9`,
/// `epel10.1`, `eln`); Packit Service passes the dist-git branch to `koji build --scratch`
/// unchanged (`DownstreamKojiScratchBuildHandler` in `packit_service/worker/handlers/distgit.py`).
/// Only the old name `main` needs mapping. The ELN build of a rawhide pull request uses
/// `koji_target("eln")`.
pub fn koji_target(branch: &str) -> String {
    display_branch(branch)
}

/// The first seven characters of a commit hash, as Pagure and our flag names show it.
pub fn short_sha(sha: &str) -> &str {
    sha.char_indices()
        .nth(7)
        .map_or(sha, |(end, _)| &sha[..end])
}

/// The flag name (Pagure's `username`): `<prefix> - <subject> - <branch label> [<short sha>]`,
/// e.g. `Fedora CI - installability - rawhide [beaf90b]`.
///
/// `subject` is a test name or [`SCRATCH_BUILD_SUBJECT`]; `branch_label` is the
/// [`display_branch`], or `eln` for the ELN build of a rawhide pull request. The short sha
/// keeps the flags of older commits visible as what they were.
pub fn check_name(prefix: &str, subject: &str, branch_label: &str, sha: &str) -> String {
    format!("{prefix} - {subject} - {branch_label} [{}]", short_sha(sha))
}

/// The uid that makes Pagure update a flag in place instead of adding one: the SHA-256 of the
/// check name, as lowercase hex cut to Pagure's 32 characters.
///
/// This is Packit Service's formula (`StatusReporterPagure.set_status` in
/// `packit_service/worker/reporting/reporters/pagure.py` hashes the flag's full name), so with
/// `check_name_prefix = "Packit"` this service computes the uids of the flags Packit left on
/// open pull requests and updates them in place at the cutover. The check name already holds
/// the subject, the branch label and the short sha, so the flags of different checks, branches
/// and commits never share a uid.
pub fn flag_uid(check_name: &str) -> String {
    let digest = Sha256::digest(check_name.as_bytes());
    let mut uid = hex::encode(digest);
    uid.truncate(FLAG_UID_MAX_CHARS);
    uid
}

/// The Testing Farm compose for tests of a build for `branch`, or of its ELN build.
///
/// From REFERENCE.md: rawhide is `Fedora-Rawhide`, `fNN` is `Fedora-NN`, EPEL N (minor
/// branches included) runs on `CentOS-Stream-N`. ELN is `Fedora-eln`, with that spelling:
/// Packit Service had to fix its mapping from `Fedora-Eln` to it (packit/packit-service pull
/// request 2844, "The right compose name is `Fedora-eln`"). `None` for branches that are not
/// releases.
pub fn compose(branch: &str, eln: bool) -> Option<String> {
    if eln {
        return Some("Fedora-eln".to_owned());
    }
    Some(match Release::from_branch(branch)? {
        Release::Rawhide => "Fedora-Rawhide".to_owned(),
        Release::Fedora(version) => format!("Fedora-{version}"),
        Release::Epel { major, .. } => format!("CentOS-Stream-{major}"),
        Release::Eln => "Fedora-eln".to_owned(),
    })
}

/// The tmt `distro` context for tests of a build for `branch`, or of its ELN build.
///
/// `fedora-rawhide`, `fedora-NN`, `fedora-eln`, and `centos-stream-N` for EPEL N: EPEL tests
/// run on CentOS Stream, and Packit Service names the distro after what the tests run on
/// (`DEFAULT_MAPPING_TF` in `packit_service/constants.py` maps `epel-9` to
/// `centos-stream-9`; its Fedora CI documentation lists `centos-stream-9` and
/// `centos-stream-10` as `distro` values). A branch that is not a release comes back as it is;
/// [`compose`] refuses it.
pub fn tmt_distro(branch: &str, eln: bool) -> String {
    if eln {
        return "fedora-eln".to_owned();
    }
    match Release::from_branch(branch) {
        Some(Release::Rawhide) => "fedora-rawhide".to_owned(),
        Some(Release::Fedora(version)) => format!("fedora-{version}"),
        Some(Release::Epel { major, .. }) => format!("centos-stream-{major}"),
        Some(Release::Eln) => "fedora-eln".to_owned(),
        None => display_branch(branch),
    }
}

/// A flag comment: one line of at most [`FLAG_COMMENT_MAX_CHARS`] characters, cut with an
/// ellipsis. Pagure shows the comment on a single line, so runs of whitespace (newlines in a
/// Testing Farm summary) become one space.
pub fn truncate_comment(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= FLAG_COMMENT_MAX_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(FLAG_COMMENT_MAX_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}
