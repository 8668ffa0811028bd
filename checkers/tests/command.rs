use std::path::PathBuf;

use checkers::command::{
    Command, Target, UsageError, inapplicable_test_reply, parse_comment, refusal_reply, usage,
    usage_reply,
};
use checkers::policy::TestName;

const PREFIX: &str = "/packit-ci";

#[test]
fn comments_not_addressed_to_us_are_none() {
    let table = [
        "",
        "   \n\n  ",
        "/packit koji-build",
        "/packit-ci-foo test",
        "/packit-ci-stg test",
        "/packit-citest",
        "please run /packit-ci test",
        "`/packit-ci test`",
        "> /packit-ci test",
        "LGTM, but\n> /packit-ci scratch-build\nwas not needed",
        "/PACKIT-CI test",
    ];
    for comment in table {
        assert_eq!(parse_comment(PREFIX, comment), None, "{comment:?}");
    }
}

#[test]
fn an_empty_prefix_matches_nothing() {
    assert_eq!(parse_comment("", "test"), None);
    assert_eq!(parse_comment("  ", "/packit-ci test"), None);
}

#[test]
fn commands_parse() {
    let test = |test, target| Command::Test { test, target };
    let table = [
        ("/packit-ci help", Command::Help),
        ("/packit-ci test", test(None, None)),
        ("  /packit-ci   test  ", test(None, None)),
        ("\n\n/packit-ci test\nthanks!", test(None, None)),
        // Anywhere in the comment, as Packit Service reads it: the first line with a command.
        ("LGTM\n/packit-ci test", test(None, None)),
        (
            "The build failed on s390x.\n\n  /packit-ci scratch-build  \n/packit-ci test rpmlint",
            Command::ScratchBuild { target: None },
        ),
        (
            "/packit-ci\nsorry, I meant\n/packit-ci test rpmlint",
            test(Some(TestName::Rpmlint), None),
        ),
        (
            "/packit-ci\ttest\trpmlint",
            test(Some(TestName::Rpmlint), None),
        ),
        (
            "/packit-ci test license-validate",
            test(Some(TestName::LicenseValidate), None),
        ),
        ("/packit-ci test custom", test(Some(TestName::Custom), None)),
        (
            "/packit-ci test --target eln",
            test(None, Some(Target::Eln)),
        ),
        (
            "/packit-ci test --target=rawhide",
            test(None, Some(Target::Rawhide)),
        ),
        (
            "/packit-ci test installability --target eln",
            test(Some(TestName::Installability), Some(Target::Eln)),
        ),
        (
            "/packit-ci test --target=eln rpminspect",
            test(Some(TestName::Rpminspect), Some(Target::Eln)),
        ),
        (
            "/packit-ci scratch-build",
            Command::ScratchBuild { target: None },
        ),
        (
            "/packit-ci scratch-build --target eln",
            Command::ScratchBuild {
                target: Some(Target::Eln),
            },
        ),
        (
            "/packit-ci scratch-build --target=rawhide\r\n",
            Command::ScratchBuild {
                target: Some(Target::Rawhide),
            },
        ),
    ];
    for (comment, command) in table {
        assert_eq!(
            parse_comment(PREFIX, comment),
            Some(Ok(command)),
            "{comment:?}"
        );
    }
}

#[test]
fn the_prefix_is_configurable() {
    assert_eq!(
        parse_comment("/packit-ci-stg", "/packit-ci-stg test rmdepcheck"),
        Some(Ok(Command::Test {
            test: Some(TestName::Rmdepcheck),
            target: None
        }))
    );
    assert_eq!(parse_comment("/packit-ci-stg", "/packit-ci test"), None);
}

#[test]
fn malformed_commands_say_what_is_wrong() {
    let table = [
        (
            "/packit-ci",
            "`/packit-ci` needs a command: `test`, `scratch-build` or `help`",
        ),
        (
            "/packit-ci   \nhelp",
            "`/packit-ci` needs a command: `test`, `scratch-build` or `help`",
        ),
        (
            "LGTM\n/packit-ci\n",
            "`/packit-ci` needs a command: `test`, `scratch-build` or `help`",
        ),
        (
            "/packit-ci build",
            "unknown command `build`; the commands are `test`, `scratch-build` and `help`",
        ),
        (
            "/packit-ci koji-build",
            "unknown command `koji-build`; the commands are `test`, `scratch-build` and `help`",
        ),
        (
            "/packit-ci Test",
            "unknown command `Test`; the commands are `test`, `scratch-build` and `help`",
        ),
        (
            "/packit-ci help me",
            "`help` takes no arguments, but got `me`",
        ),
        (
            "/packit-ci help --target eln",
            "`help` takes no arguments, but got `--target`",
        ),
        (
            "/packit-ci test tmt",
            "unknown test `tmt`; the tests are `installability`, `rpminspect`, `rpmlint`, \
             `rmdepcheck`, `license-validate`, `custom`",
        ),
        (
            "/packit-ci test rpmlint rpminspect",
            "`test` takes one test name at most, but also got `rpminspect`",
        ),
        (
            "/packit-ci test --target",
            "`--target` needs a value: `rawhide` or `eln`",
        ),
        (
            "/packit-ci test --target=",
            "`--target` needs a value: `rawhide` or `eln`",
        ),
        (
            "/packit-ci test --target --id 3",
            "`--target` needs a value: `rawhide` or `eln`",
        ),
        (
            "/packit-ci test --target f42",
            "unknown target `f42`; the targets are `rawhide` and `eln`",
        ),
        (
            "/packit-ci test --target ELN",
            "unknown target `ELN`; the targets are `rawhide` and `eln`",
        ),
        (
            "/packit-ci test --target eln --target rawhide",
            "`--target` is given more than once",
        ),
        (
            "/packit-ci test --id 3",
            "unknown option `--id`; the only option is `--target rawhide|eln`",
        ),
        (
            "/packit-ci test -t eln",
            "unknown option `-t`; the only option is `--target rawhide|eln`",
        ),
        (
            "/packit-ci scratch-build now",
            "`scratch-build` takes no arguments besides `--target`, but got `now`",
        ),
        (
            "/packit-ci scratch-build rpmlint --target eln",
            "`scratch-build` takes no arguments besides `--target`, but got `rpmlint`",
        ),
        (
            "/packit-ci test `rm`",
            "unknown test `rm`; the tests are `installability`, `rpminspect`, `rpmlint`, \
             `rmdepcheck`, `license-validate`, `custom`",
        ),
    ];
    for (comment, message) in table {
        assert_eq!(
            parse_comment(PREFIX, comment),
            Some(Err(UsageError {
                message: message.to_owned()
            })),
            "{comment:?}"
        );
    }
}

#[test]
fn echoed_words_are_kept_short() {
    let long = "x".repeat(100);
    let Some(Err(error)) = parse_comment(PREFIX, &format!("/packit-ci {long}")) else {
        panic!("a usage error");
    };
    assert_eq!(
        error.message,
        format!(
            "unknown command `{}…`; the commands are `test`, `scratch-build` and `help`",
            "x".repeat(39)
        )
    );
}

#[test]
fn a_real_packit_comment_is_not_for_us() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/bus/pagure.pull-request.comment.added.json");
    let text = std::fs::read_to_string(path).expect("the captured message is readable");
    let message: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let comments = message["body"]["pullrequest"]["comments"]
        .as_array()
        .expect("comments");
    let comment = comments
        .last()
        .and_then(|c| c["comment"].as_str())
        .expect("a comment");
    assert_eq!(comment, "/packit koji-build");
    assert_eq!(parse_comment(PREFIX, comment), None);
}

#[test]
fn targets_round_trip() {
    for (target, text) in [(Target::Rawhide, "rawhide"), (Target::Eln, "eln")] {
        assert_eq!(target.as_str(), text);
        assert_eq!(target.to_string(), text);
        assert_eq!(Target::parse(text), Some(target));
    }
    assert_eq!(Target::parse("main"), None);
}

const DOCS: &str = "https://packit.dev/fedora-ci";

#[test]
fn usage_lists_the_commands_and_tests() {
    let text = usage("/packit-ci", DOCS, None);
    for expected in [
        "`/packit-ci test`",
        "`/packit-ci test <name>`",
        "`/packit-ci scratch-build`",
        "`/packit-ci help`",
        "`--target eln`",
        "FAS group `packager`",
        "Documentation: https://packit.dev/fedora-ci",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    for test in TestName::ALL {
        assert!(text.contains(&format!("`{test}`")), "{test} in {text}");
    }
    assert_eq!(
        text,
        "Fedora CI understands these commands in a pull request comment:\n\
         \n\
         - `/packit-ci test` runs all tests again on the latest successful scratch build of the \
         pull request\n\
         - `/packit-ci test <name>` runs one test again; the tests are `installability`, \
         `rpminspect`, `rpmlint`, `rmdepcheck`, `license-validate`, `custom` (those that apply \
         to the project)\n\
         - `/packit-ci scratch-build` builds the pull request again in Koji, then runs the tests\n\
         - `/packit-ci help` shows this message\n\
         \n\
         Without `--target`, `test` and `scratch-build` act on every build of the pull request: \
         the one for its branch and, for a rawhide pull request of an ELN package, the ELN one. \
         `--target rawhide` or `--target eln` picks one.\n\
         \n\
         The command is the first line of the comment that starts with `/packit-ci`. Only \
         members of the FAS group `packager` can retrigger Fedora CI.\n\
         \n\
         Documentation: https://packit.dev/fedora-ci\n"
    );
    assert!(usage("/packit-ci-stg", DOCS, None).contains("`/packit-ci-stg scratch-build`"));
    let disabled = usage(
        "/packit-ci",
        DOCS,
        Some("the project is not in fedora_ci.enabled_projects"),
    );
    assert!(disabled.contains(
        "\nFedora CI does not run on this project: the project is not in \
         fedora_ci.enabled_projects.\n"
    ));
}

#[test]
fn usage_replies_start_with_the_error_and_link_the_docs() {
    let Some(Err(error)) = parse_comment(PREFIX, "/packit-ci test tmt") else {
        panic!("a usage error");
    };
    let reply = usage_reply(PREFIX, DOCS, &error);
    assert!(
        reply.starts_with(
            "There is a syntax error in this command: unknown test `tmt`; the tests are "
        ),
        "{reply}"
    );
    assert!(reply.contains(
        "See the [Fedora CI documentation](https://packit.dev/fedora-ci) or use \
         `/packit-ci help`."
    ));
    assert!(reply.ends_with(&usage(PREFIX, DOCS, None)));
}

#[test]
fn inapplicable_tests_get_the_list_of_those_that_apply() {
    assert_eq!(
        inapplicable_test_reply(
            PREFIX,
            TestName::Custom,
            "no .fmf/version at beaf90b",
            &[TestName::Installability, TestName::Rpmlint],
        ),
        "The `custom` test does not apply to this pull request (no .fmf/version at beaf90b). \
         The tests that do: `installability`, `rpmlint`. Run one with `/packit-ci test <name>`, \
         or all with `/packit-ci test`."
    );
    assert_eq!(
        inapplicable_test_reply(PREFIX, TestName::Rpmlint, "why", &[]),
        "The `rpmlint` test does not apply to this pull request (why), and no other test does \
         either."
    );
}

#[test]
fn refusals_are_polite() {
    assert_eq!(
        refusal_reply("alice"),
        "Sorry @alice, only members of the FAS group `packager` can retrigger Fedora CI. \
         A packager of this project can run the command for you."
    );
}
