//! What a child process (`kinit`, `koji`, `curl`) sees of the service's
//! environment. The review's L6 found the database URL, with its password,
//! in `kinit`'s. A test cannot set a variable for itself (`set_var` is
//! unsafe), so it runs itself again with the service's secrets set
//! ([`rerun_with_service_secrets`]) and that run makes the assertions.

use std::collections::BTreeMap;

/// Set in the inner run; must reach no child.
pub const DATABASE_URL: &str = "postgres://fedora-ci:SECRET-DB-PASSWORD@db.example/fedora_ci";
pub const SENTRY_DSN: &str = "https://SECRET-SENTRY-KEY@sentry.example/7";

/// Whether this is the inner run, which goes on to make the assertions.
/// In the outer run (the test as nextest starts it), runs the test `name`
/// again with the secrets, `KRB5_CONFIG` and `HOME` set, checks that it
/// passed, and returns false.
pub fn rerun_with_service_secrets(name: &str) -> bool {
    if std::env::var_os("FEDORA_CI_TEST_CHILD_ENV").is_some() {
        assert_eq!(
            std::env::var("FEDORA_CI__DATABASE__URL").as_deref(),
            Ok(DATABASE_URL)
        );
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let output = std::process::Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("FEDORA_CI_TEST_CHILD_ENV", "1")
        .env("FEDORA_CI__DATABASE__URL", DATABASE_URL)
        .env("FEDORA_CI__SENTRY__DSN", SENTRY_DSN)
        .env("KRB5_CONFIG", "/etc/ipa/krb5.conf")
        .env("HOME", "/home/fedora-ci-worker")
        .output()
        .expect("the test runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the inner run ran nothing: {stdout}"
    );
    false
}

/// The environment a child saw, by name, from the `export -p` it wrote (a
/// shell builtin, so the fakes need nothing on `PATH`).
pub fn exported(dump: &str) -> BTreeMap<String, String> {
    dump.lines()
        .filter_map(|line| line.strip_prefix("export "))
        .map(|entry| match entry.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.trim_matches('\'').to_owned()),
            None => (entry.to_owned(), String::new()),
        })
        .collect()
}

/// Checks what `program` saw (`dump`, its `export -p`): no secret, no
/// variable but the ones the clients pass on, and what the inner run set
/// arrived. Returns its environment for further checks.
pub fn check_child_env(program: &str, dump: &str) -> BTreeMap<String, String> {
    assert!(dump.contains("export "), "{program} did not run");
    assert!(!dump.contains("SECRET"), "{program}: {dump}");
    let allowed: Vec<&str> = clients::process::INHERITED_ENV
        .iter()
        .copied()
        .chain(["PATH", "KRB5CCNAME", "LC_ALL", "PWD", "OLDPWD"])
        .collect();
    let env = exported(dump);
    for name in env.keys() {
        assert!(allowed.contains(&name.as_str()), "{program} got {name}");
    }
    for (name, value) in [
        ("LC_ALL", "C"),
        ("KRB5_CONFIG", "/etc/ipa/krb5.conf"),
        ("HOME", "/home/fedora-ci-worker"),
    ] {
        assert_eq!(
            env.get(name).map(String::as_str),
            Some(value),
            "{program}: {name}"
        );
    }
    assert!(env.contains_key("KRB5CCNAME"), "{program}");
    env
}
