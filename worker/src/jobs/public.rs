//! Errors as anyone may read them.
//!
//! A job's error is written for operators: it can name the service's
//! Kerberos principal, the keytab's path, internal URLs. Operators read it
//! whole behind the admin token (`GET /api/jobs`, `fedora-ci-worker jobs`).
//! What reaches public places (pull-request flags, decisions in
//! `/api/events`, the status page) is [`public_error`] of it: the service and
//! what went wrong, with URLs, paths and principals taken out.

/// Where the whole error can be read, for a text that was shortened.
const WHERE_IN_FULL: &str = "operators see the whole error with `fedora-ci-worker jobs`";

/// `error` with what may not be shown publicly taken out.
///
/// - An authentication failure becomes `<service>: authentication failed`:
///   what follows comes from `kinit` or the service and names the principal
///   and the keytab.
/// - URLs become `<url>`, absolute paths `<path>`, Kerberos principals and
///   e-mail addresses `<principal>`.
pub fn public_error(error: &str) -> String {
    if let Some(at) = error.find("authentication failed") {
        let end = at + "authentication failed".len();
        return format!("{} ({WHERE_IN_FULL})", &error[..end]);
    }
    let mut out = String::with_capacity(error.len());
    for (i, word) in error.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&public_word(word));
    }
    out
}

fn public_word(word: &str) -> String {
    // Punctuation around a word (quotes, parentheses, a trailing colon) stays.
    let start = word
        .find(|c: char| c.is_alphanumeric() || c == '/' || c == '~')
        .unwrap_or(word.len());
    let end = word
        .rfind(|c: char| c.is_alphanumeric() || c == '/')
        .map_or(start, |i| i + 1)
        .max(start);
    let (before, core, after) = (&word[..start], &word[start..end], &word[end..]);
    let replaced = if core.contains("://") {
        "<url>"
    } else if (core.starts_with('/') || core.starts_with("~/")) && core[1..].contains('/') {
        "<path>"
    } else if is_principal(core) {
        "<principal>"
    } else {
        return word.to_owned();
    };
    format!("{before}{replaced}{after}")
}

/// `name@REALM` or `user@host.example`: something before and a dotted or
/// upper-case name after a single `@`.
fn is_principal(word: &str) -> bool {
    match word.split_once('@') {
        Some((user, realm)) => {
            !user.is_empty()
                && !realm.is_empty()
                && !realm.contains('@')
                && (realm.contains('.') || realm.chars().all(|c| c.is_ascii_uppercase()))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::public_error;

    #[test]
    fn authentication_failures_lose_their_details() {
        assert_eq!(
            public_error(
                "koji: authentication failed: kinit for fedora-ci-worker@FEDORAPROJECT.ORG \
                 failed (exit status 1): kinit: Preauthentication failed while getting initial \
                 credentials; keytab /etc/keytabs/koji.keytab"
            ),
            "koji: authentication failed (operators see the whole error with \
             `fedora-ci-worker jobs`)"
        );
    }

    #[test]
    fn urls_paths_and_principals_are_taken_out() {
        assert_eq!(
            public_error(
                "distgit: POST https://pagure-internal.iad2:8443/api/0/rpms/bash/pull-request/4/flag: \
                 500 Internal Server Error: see /var/log/httpd/error_log, ask admin@fedoraproject.org"
            ),
            "distgit: POST <url>: 500 Internal Server Error: see <path>, ask <principal>"
        );
        assert_eq!(
            public_error("cannot run (\"/usr/bin/koji\"): No such file"),
            "cannot run (\"<path>\"): No such file"
        );
    }

    #[test]
    fn ordinary_errors_are_left_alone() {
        for text in [
            "koji: fault 1000: Unknown build target: f99",
            "testing-farm: timed out: operation timed out",
            "the build could not be submitted to Koji: 400 Bad Request",
            "rpms/bash and a/b are names, not paths",
            "",
        ] {
            assert_eq!(public_error(text), text);
        }
    }
}
