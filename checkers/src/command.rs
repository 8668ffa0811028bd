//! Retrigger commands in pull request comments (SPEC F5):
//!
//! ```text
//! <prefix> test [<name>] [--target rawhide|eln]
//! <prefix> scratch-build [--target rawhide|eln]
//! <prefix> help
//! ```
//!
//! A comment is read as Packit Service reads it (`get_packit_commands_from_comment` in
//! `packit_service/utils.py`): the command is the first line, anywhere in the comment, whose
//! first word is the prefix and that has a command after it. A line quoted with `>` starts with
//! `>`, so quoted commands do not run. Packit Service answers a command it cannot read with a
//! pointer to its documentation; our answer also says what was wrong and lists the commands. A
//! comment whose only mention of the prefix is a bare `<prefix>` line gets the same answer,
//! where Packit Service stays silent: the packager meant to ask for something.

use std::fmt::{self, Write as _};

use thiserror::Error;

use crate::policy::TestName;
use crate::rules::PACKAGER_GROUP;

/// Which build a command is about: the pull request's own branch, or the ELN build of a
/// rawhide pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Rawhide,
    Eln,
}

impl Target {
    pub const ALL: [Target; 2] = [Target::Rawhide, Target::Eln];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Rawhide => "rawhide",
            Target::Eln => "eln",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Help,
    /// Run one test, or all enabled tests, again on the latest successful build of the head.
    Test {
        test: Option<TestName>,
        target: Option<Target>,
    },
    /// Build the head again, then test it.
    ScratchBuild {
        target: Option<Target>,
    },
}

/// A comment addressed to us that is not a command we know; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
}

impl UsageError {
    fn new(message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
        }
    }
}

/// Reads a comment: `None` when it is not addressed to us (no line starts with `prefix` as a
/// whole word), else the command of the first line that has one, or what is wrong with it.
pub fn parse_comment(prefix: &str, comment: &str) -> Option<Result<Command, UsageError>> {
    let prefix = prefix.trim();
    if prefix.is_empty() {
        return None;
    }
    let mut bare = false;
    for line in comment.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some(prefix) {
            continue;
        }
        let words: Vec<&str> = words.collect();
        if words.is_empty() {
            bare = true;
            continue;
        }
        return Some(parse_words(prefix, &words));
    }
    bare.then(|| Err(parse_words(prefix, &[]).expect_err("no command is a usage error")))
}

fn parse_words(prefix: &str, words: &[&str]) -> Result<Command, UsageError> {
    let Some((&command, args)) = words.split_first() else {
        return Err(UsageError::new(format!(
            "`{prefix}` needs a command: `test`, `scratch-build` or `help`"
        )));
    };
    match command {
        "help" => match args.first() {
            Some(extra) => Err(UsageError::new(format!(
                "`help` takes no arguments, but got `{}`",
                quote(extra)
            ))),
            None => Ok(Command::Help),
        },
        "test" => {
            let Arguments { positional, target } = parse_arguments(args)?;
            let test = match positional.as_slice() {
                [] => None,
                [name] => Some(TestName::parse(name).ok_or_else(|| {
                    UsageError::new(format!(
                        "unknown test `{}`; the tests are {}",
                        quote(name),
                        test_list()
                    ))
                })?),
                [_, extra, ..] => {
                    return Err(UsageError::new(format!(
                        "`test` takes one test name at most, but also got `{}`",
                        quote(extra)
                    )));
                }
            };
            Ok(Command::Test { test, target })
        }
        "scratch-build" => {
            let Arguments { positional, target } = parse_arguments(args)?;
            match positional.first() {
                Some(extra) => Err(UsageError::new(format!(
                    "`scratch-build` takes no arguments besides `--target`, but got `{}`",
                    quote(extra)
                ))),
                None => Ok(Command::ScratchBuild { target }),
            }
        }
        other => Err(UsageError::new(format!(
            "unknown command `{}`; the commands are `test`, `scratch-build` and `help`",
            quote(other)
        ))),
    }
}

struct Arguments<'a> {
    positional: Vec<&'a str>,
    target: Option<Target>,
}

fn parse_arguments<'a>(args: &[&'a str]) -> Result<Arguments<'a>, UsageError> {
    let mut positional = Vec::new();
    let mut target = None;
    let mut args = args.iter().copied();
    while let Some(arg) = args.next() {
        if !arg.starts_with('-') {
            positional.push(arg);
            continue;
        }
        let (option, inline_value) = match arg.split_once('=') {
            Some((option, value)) => (option, Some(value)),
            None => (arg, None),
        };
        if option != "--target" {
            return Err(UsageError::new(format!(
                "unknown option `{}`; the only option is `--target rawhide|eln`",
                quote(option)
            )));
        }
        let value = match inline_value {
            Some(value) => Some(value),
            None => args.next().filter(|next| !next.starts_with('-')),
        };
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Err(UsageError::new(
                "`--target` needs a value: `rawhide` or `eln`",
            ));
        };
        let parsed = Target::parse(value).ok_or_else(|| {
            UsageError::new(format!(
                "unknown target `{}`; the targets are `rawhide` and `eln`",
                quote(value)
            ))
        })?;
        if target.replace(parsed).is_some() {
            return Err(UsageError::new("`--target` is given more than once"));
        }
    }
    Ok(Arguments { positional, target })
}

/// User text echoed back inside Markdown code: without backticks that would end the code
/// span, and short, since the reply is about the command and not the text.
fn quote(word: &str) -> String {
    const MAX_CHARS: usize = 40;
    let clean: String = word.chars().filter(|c| *c != '`').collect();
    if clean.chars().count() <= MAX_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

fn test_list() -> String {
    let names: Vec<String> = TestName::ALL
        .iter()
        .map(|test| format!("`{test}`"))
        .collect();
    names.join(", ")
}

/// The reply to `help`: the commands and test names, in Markdown, with a link to the user
/// documentation. `not_running` says why Fedora CI does not run on this project, if it does
/// not: help is answered everywhere, as Packit Service does.
pub fn usage(prefix: &str, docs_url: &str, not_running: Option<&str>) -> String {
    let prefix = prefix.trim();
    let mut text =
        String::from("Fedora CI understands these commands in a pull request comment:\n\n");
    let lines = [
        (
            format!("{prefix} test"),
            "runs all tests again on the latest successful scratch build of the pull request"
                .to_owned(),
        ),
        (
            format!("{prefix} test <name>"),
            format!(
                "runs one test again; the tests are {} (those that apply to the project)",
                test_list()
            ),
        ),
        (
            format!("{prefix} scratch-build"),
            "builds the pull request again in Koji, then runs the tests".to_owned(),
        ),
        (format!("{prefix} help"), "shows this message".to_owned()),
    ];
    for (command, meaning) in lines {
        let _ = writeln!(text, "- `{command}` {meaning}");
    }
    text.push_str(
        "\nWithout `--target`, `test` and `scratch-build` act on every build of the pull request: \
         the one for its branch and, for a rawhide pull request of an ELN package, the ELN one. \
         `--target rawhide` or `--target eln` picks one.\n",
    );
    let _ = write!(
        text,
        "\nThe command is the first line of the comment that starts with `{prefix}`. Only members \
         of the FAS group `{PACKAGER_GROUP}` can retrigger Fedora CI.\n"
    );
    if let Some(why) = not_running {
        let _ = write!(text, "\nFedora CI does not run on this project: {why}.\n");
    }
    let _ = write!(text, "\nDocumentation: {}\n", docs_url.trim());
    text
}

/// The reply to a comment addressed to us that we could not read: what was wrong, where the
/// documentation is, then the usage.
pub fn usage_reply(prefix: &str, docs_url: &str, error: &UsageError) -> String {
    format!(
        "There is a syntax error in this command: {error}. See the [Fedora CI documentation]({}) \
         or use `{} help`.\n\n{}",
        docs_url.trim(),
        prefix.trim(),
        usage(prefix, docs_url, None)
    )
}

/// The reply to `test <name>` for a test that does not apply to this pull request: why, and
/// the tests that do.
pub fn inapplicable_test_reply(
    prefix: &str,
    test: TestName,
    why: &str,
    applicable: &[TestName],
) -> String {
    let prefix = prefix.trim();
    if applicable.is_empty() {
        return format!(
            "The `{test}` test does not apply to this pull request ({why}), and no other test \
             does either."
        );
    }
    let names: Vec<String> = applicable.iter().map(|t| format!("`{t}`")).collect();
    format!(
        "The `{test}` test does not apply to this pull request ({why}). The tests that do: {}. \
         Run one with `{prefix} test <name>`, or all with `{prefix} test`.",
        names.join(", ")
    )
}

/// The reply to a retrigger from somebody who is not a packager.
pub fn refusal_reply(user: &str) -> String {
    format!(
        "Sorry @{user}, only members of the FAS group `{PACKAGER_GROUP}` can retrigger Fedora CI. \
         A packager of this project can run the command for you."
    )
}
