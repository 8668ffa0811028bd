use checkers::naming::{
    Release, SCRATCH_BUILD_SUBJECT, check_name, compose, display_branch, flag_uid, koji_target,
    short_sha, tmt_distro, truncate_comment,
};

#[test]
fn branches_name_releases() {
    let table = [
        ("rawhide", Some(Release::Rawhide)),
        ("main", Some(Release::Rawhide)),
        ("f42", Some(Release::Fedora(42))),
        ("f9", Some(Release::Fedora(9))),
        ("eln", Some(Release::Eln)),
        (
            "epel9",
            Some(Release::Epel {
                major: 9,
                minor: None,
            }),
        ),
        (
            "epel10",
            Some(Release::Epel {
                major: 10,
                minor: None,
            }),
        ),
        (
            "epel10.1",
            Some(Release::Epel {
                major: 10,
                minor: Some(1),
            }),
        ),
        ("f+42", None),
        ("f-42", None),
        ("f42-updates", None),
        ("F42", None),
        ("epel", None),
        ("epel10.", None),
        ("epel.1", None),
        ("epel10.1.2", None),
        ("epel-9", None),
        ("el9", None),
        ("Rawhide", None),
        ("master", None),
        ("test-koji-downstream", None),
        ("", None),
    ];
    for (branch, release) in table {
        assert_eq!(Release::from_branch(branch), release, "{branch:?}");
    }
}

#[test]
fn branches_map_to_koji_targets_composes_and_distros() {
    // branch, eln, display, koji target, compose, tmt distro
    let table = [
        (
            "rawhide",
            false,
            "rawhide",
            "rawhide",
            Some("Fedora-Rawhide"),
            "fedora-rawhide",
        ),
        (
            "main",
            false,
            "rawhide",
            "rawhide",
            Some("Fedora-Rawhide"),
            "fedora-rawhide",
        ),
        ("f42", false, "f42", "f42", Some("Fedora-42"), "fedora-42"),
        ("f41", false, "f41", "f41", Some("Fedora-41"), "fedora-41"),
        (
            "epel9",
            false,
            "epel9",
            "epel9",
            Some("CentOS-Stream-9"),
            "centos-stream-9",
        ),
        (
            "epel10",
            false,
            "epel10",
            "epel10",
            Some("CentOS-Stream-10"),
            "centos-stream-10",
        ),
        (
            "epel10.1",
            false,
            "epel10.1",
            "epel10.1",
            Some("CentOS-Stream-10"),
            "centos-stream-10",
        ),
        ("eln", false, "eln", "eln", Some("Fedora-eln"), "fedora-eln"),
        (
            "rawhide",
            true,
            "rawhide",
            "rawhide",
            Some("Fedora-eln"),
            "fedora-eln",
        ),
        (
            "main",
            true,
            "rawhide",
            "rawhide",
            Some("Fedora-eln"),
            "fedora-eln",
        ),
        (
            "test-koji-downstream",
            false,
            "test-koji-downstream",
            "test-koji-downstream",
            None,
            "test-koji-downstream",
        ),
    ];
    for (branch, eln, display, target, compose_name, distro) in table {
        let case = format!("{branch} eln={eln}");
        assert_eq!(display_branch(branch), display, "{case}");
        assert_eq!(koji_target(branch), target, "{case}");
        assert_eq!(compose(branch, eln).as_deref(), compose_name, "{case}");
        assert_eq!(tmt_distro(branch, eln), distro, "{case}");
    }
}

#[test]
fn short_shas_are_seven_characters() {
    let table = [
        ("beaf90bcecc51968a46663f8d6f092bfdc92e682", "beaf90b"),
        ("beaf90b", "beaf90b"),
        ("beaf", "beaf"),
        ("", ""),
        ("ééééééééé", "ééééééé"),
    ];
    for (sha, short) in table {
        assert_eq!(short_sha(sha), short, "{sha:?}");
    }
}

#[test]
fn check_names_follow_the_reference_example() {
    let sha = "beaf90bcecc51968a46663f8d6f092bfdc92e682";
    let table = [
        (
            "installability",
            "rawhide",
            "Fedora CI - installability - rawhide [beaf90b]",
        ),
        (
            SCRATCH_BUILD_SUBJECT,
            "rawhide",
            "Fedora CI - scratch build - rawhide [beaf90b]",
        ),
        (
            SCRATCH_BUILD_SUBJECT,
            "eln",
            "Fedora CI - scratch build - eln [beaf90b]",
        ),
        (
            "license-validate",
            "f42",
            "Fedora CI - license-validate - f42 [beaf90b]",
        ),
    ];
    for (subject, label, name) in table {
        assert_eq!(check_name("Fedora CI", subject, label, sha), name);
    }
    assert_eq!(
        check_name("Fedora CI stg", "custom", "epel10", "0123456"),
        "Fedora CI stg - custom - epel10 [0123456]"
    );
}

#[test]
fn flag_uids_are_packits() {
    // Expected values from Python, as Packit Service computes them:
    // hashlib.sha256(name.encode()).hexdigest()[:32]
    let packit = [
        (
            "Packit - installability - rawhide [beaf90b]",
            "d6180f0168d35be241dd9502ccebf427",
        ),
        (
            "Packit - scratch build - eln [beaf90b]",
            "462a0fde35cfc74062ff5c45fa2f85a1",
        ),
    ];
    for (name, uid) in packit {
        assert_eq!(flag_uid(name), uid, "{name}");
    }
    // The name is built the way Packit builds it, so the prefix alone decides whose flags
    // this service takes over.
    assert_eq!(
        check_name("Packit", "installability", "rawhide", "beaf90b3c1e0"),
        packit[0].0
    );
    assert_eq!(
        check_name("Packit", SCRATCH_BUILD_SUBJECT, "eln", "beaf90b3c1e0"),
        packit[1].0
    );

    let ours = flag_uid("Fedora CI - installability - rawhide [beaf90b]");
    assert_eq!(ours.len(), 32);
    assert!(
        ours.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let others = [
        flag_uid("Fedora CI - installability - eln [beaf90b]"),
        flag_uid("Fedora CI - installability - rawhide [beaf90c]"),
        flag_uid("Fedora CI - rpmlint - rawhide [beaf90b]"),
        packit[0].1.to_owned(),
    ];
    for other in others {
        assert_ne!(other, ours);
    }
}

#[test]
fn flag_comments_fit_pagure() {
    let exactly = "x".repeat(140);
    let over = "y".repeat(141);
    let wide = "é".repeat(200);
    let cut_at_space = format!("{} {}", "a".repeat(138), "b".repeat(10));
    let table = [
        ("Tests passed".to_owned(), "Tests passed".to_owned()),
        (
            "  2 tests\n  failed \r\n ".to_owned(),
            "2 tests failed".to_owned(),
        ),
        (exactly.clone(), exactly),
        (over, format!("{}…", "y".repeat(139))),
        (wide, format!("{}…", "é".repeat(139))),
        (cut_at_space, format!("{}…", "a".repeat(138))),
        (String::new(), String::new()),
    ];
    for (text, expected) in table {
        let comment = truncate_comment(&text);
        assert_eq!(comment, expected, "{text:?}");
        assert!(comment.chars().count() <= 140);
    }
}
