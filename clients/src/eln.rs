//! The ELN package lists: plain-text files of source package names, one a
//! line, that the Fedora ELN SIG publishes on tiny.distro.builders (the
//! `view-eln` and `view-eln-extras` views). A rawhide pull request of a
//! package on them also gets an ELN scratch build (SPEC F1).
//!
//! [`PackageListClient`] is the real implementation. Facts it relies on
//! (Packit Service's `get_eln_packages` in `packit_service/utils.py`, and
//! the lists themselves): an anonymous `GET` of the list's URL answers
//! `text/plain` with one source package name a line; Packit reads every
//! line as a name.
//!
//! What comes back is checked before it can replace a list the service
//! already has: an HTML page (a proxy's or a portal's error page served
//! with 200), a line that is not a package name, or an empty list is
//! refused as a whole ([`parse_package_list`]), so a broken answer never
//! silently drops the ELN builds of every package.

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use url::Url;

use crate::ClientError;
use crate::http::{self, Timeouts};

/// The service name in errors and metrics.
pub const SERVICE: &str = "eln-package-list";

/// The largest list read. The ELN lists hold a few thousand names, about
/// 100 KB together; ten times that is refused rather than buffered.
pub const MAX_LIST_BYTES: usize = 1024 * 1024;

#[async_trait]
pub trait PackageLists: Send + Sync {
    /// The source package names of the list at `url`, sorted, each once.
    async fn fetch(&self, url: &str) -> Result<Vec<String>, ClientError>;
}

/// The lists over HTTP: no authentication, no redirects, the usual
/// timeouts, at most [`MAX_LIST_BYTES`] read.
#[derive(Debug)]
pub struct PackageListClient {
    http: reqwest::Client,
}

impl PackageListClient {
    pub fn new(timeouts: Timeouts) -> Result<Self, ClientError> {
        Ok(PackageListClient {
            http: http::build_client(SERVICE, timeouts)?,
        })
    }
}

#[async_trait]
impl PackageLists for PackageListClient {
    async fn fetch(&self, url: &str) -> Result<Vec<String>, ClientError> {
        let url = http::parse_base_url(SERVICE, "fedora_ci.eln_packages_urls", url)?;
        let context = http::describe_call(&reqwest::Method::GET, &url);
        let response = http::call(SERVICE, self.http.get(url)).await?;
        let html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim().to_ascii_lowercase().starts_with("text/html"));
        if html {
            // Not read at all: what it says is no list.
            return Err(refused(&context, &ListError::Html));
        }
        let body = http::read_limited(SERVICE, &context, response, MAX_LIST_BYTES).await?;
        let text =
            std::str::from_utf8(&body).map_err(|_| refused(&context, &ListError::NotUtf8))?;
        parse_package_list(text).map_err(|error| refused(&context, &error))
    }
}

/// An answer that is not a package list: permanent, since asking again gets
/// the same answer (the next scheduled fetch asks anyway).
fn refused(context: &str, error: &ListError) -> ClientError {
    ClientError::Permanent {
        service: SERVICE,
        message: format!("{context}: not a package list: {error}"),
    }
}

/// Why a text is not a package list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("the answer is an HTML page")]
    Html,
    #[error("the answer is not UTF-8 text")]
    NotUtf8,
    /// The name is quoted and cut short: it is what the server sent.
    #[error("line {line}: {name:?} is not a package name")]
    BadName { line: usize, name: String },
    #[error("the answer names no package")]
    Empty,
}

/// The longest part of a bad line quoted in an error.
const QUOTED_CHARS: usize = 60;

/// The package names of a list: one a line, surrounding whitespace ignored,
/// blank lines and `#` comments skipped; sorted, each once. Every name must
/// be a dist-git repository name ([`events::typed::is_pagure_name`]), since
/// that is what the rule compares it with; a line that is not one makes the
/// whole text refused, and so does a text without a name.
pub fn parse_package_list(text: &str) -> Result<Vec<String>, ListError> {
    if text.trim_start().starts_with('<') {
        return Err(ListError::Html);
    }
    let mut names = std::collections::BTreeSet::new();
    for (index, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if !events::typed::is_pagure_name(name) {
            return Err(ListError::BadName {
                line: index + 1,
                name: name.chars().take(QUOTED_CHARS).collect(),
            });
        }
        names.insert(name.to_owned());
    }
    if names.is_empty() {
        return Err(ListError::Empty);
    }
    Ok(names.into_iter().collect())
}

/// A list URL as logs, the status page and recorded failures show it:
/// without user name or password, should a configured URL carry them.
pub fn display_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_sorted_unique_names() {
        let text = "glibc\n  bash \r\n\n# the extras\npython3\nbash\nlibstdc++\npython3.12\n";
        assert_eq!(
            parse_package_list(text),
            Ok(["bash", "glibc", "libstdc++", "python3", "python3.12"]
                .map(str::to_owned)
                .to_vec())
        );
    }

    #[test]
    fn what_is_not_a_list_is_refused_whole() {
        assert_eq!(
            parse_package_list("\n  <!DOCTYPE html>\n<html><body>Sign in</body></html>"),
            Err(ListError::Html)
        );
        assert_eq!(parse_package_list(""), Err(ListError::Empty));
        assert_eq!(
            parse_package_list("\n# nothing yet\n\n"),
            Err(ListError::Empty)
        );
        assert_eq!(
            parse_package_list("bash\nglibc\nnot a name\nllvm\n"),
            Err(ListError::BadName {
                line: 3,
                name: "not a name".to_owned()
            })
        );
        for bad in ["..", "-rf", "a/b", "bash\u{0}", "glibc;rm"] {
            assert!(
                matches!(
                    parse_package_list(&format!("bash\n{bad}\n")),
                    Err(ListError::BadName { line: 2, .. })
                ),
                "{bad:?}"
            );
        }
        let long = "x ".repeat(500);
        match parse_package_list(&long) {
            Err(ListError::BadName { name, .. }) => assert_eq!(name.chars().count(), QUOTED_CHARS),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            display_url("https://user:pw@tiny.distro.builders/list.txt"),
            "https://tiny.distro.builders/list.txt"
        );
        assert_eq!(display_url("not a url"), "<unparseable URL>");
    }
}
