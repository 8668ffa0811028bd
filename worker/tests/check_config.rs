//! `check-config`: it names the key of a broken configuration, and it
//! accepts the public-broker configuration that fedora-messaging ships.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fedora-ci-worker");

fn data() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/fedora-messaging")
}

#[test]
fn a_broken_configuration_names_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, key) in [
        (
            "[database]\nmax_connections = \"many\"\n",
            "database.max_connections",
        ),
        ("[api]\nlisten = \"localhost\"\n", "api.listen"),
        ("[bus]\namqp_url = \"http://broker\"\n", "bus.amqp_url"),
        ("[bus.qos]\nprefetch_count = 0\n", "bus.qos.prefetch_count"),
        (
            "[distgit]\ntoken_file = \"/nonexistent\"\n",
            "distgit.token_file",
        ),
        ("[database]\nmaxconn = 1\n", "maxconn"),
        (
            "[fedora_ci]\ndashboard_url = \"dashboard.example.org\"\n",
            "fedora_ci.dashboard_url",
        ),
    ] {
        let file = dir.path().join("broken.toml");
        std::fs::write(&file, text).expect("write");
        let output = Command::new(BIN)
            .arg("--config")
            .arg(&file)
            .arg("check-config")
            .env_remove("FEDORA_CI_CONFIG")
            .output()
            .expect("run check-config");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(key), "{text}: {stderr:?} should name {key}");
    }
}

/// `fedora_ci.dashboard_url` from the environment and from a file, as the
/// effective configuration shows it.
#[test]
fn the_dashboard_url_comes_from_the_environment_or_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dashboard.toml");
    std::fs::write(
        &file,
        "[fedora_ci]\ndashboard_url = \"https://dashboard.example.org\"\n",
    )
    .expect("write");
    let from_file = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .arg("check-config")
        .env_remove("FEDORA_CI_CONFIG")
        .env_remove("FEDORA_CI__FEDORA_CI__DASHBOARD_URL")
        .output()
        .expect("run check-config");
    let from_env = Command::new(BIN)
        .arg("check-config")
        .env_remove("FEDORA_CI_CONFIG")
        .env(
            "FEDORA_CI__FEDORA_CI__DASHBOARD_URL",
            "https://dashboard.example.org",
        )
        .output()
        .expect("run check-config");
    for output in [from_file, from_env] {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("dashboard_url = \"https://dashboard.example.org\""),
            "{stdout}"
        );
    }
}

/// The shipped file names its certificates under /etc/fedora-messaging, as
/// the fedora-messaging package installs them. The command runs in a private
/// mount namespace where an overlay puts the shipped certificates there, so
/// the file is read unchanged and the host's /etc is left alone.
#[test]
fn accepts_the_fedora_messaging_public_broker_config() {
    let work = tempfile::tempdir().expect("tempdir");
    let upper = work.path().join("upper/fedora-messaging");
    std::fs::create_dir_all(&upper).expect("mkdir");
    std::fs::create_dir_all(work.path().join("work")).expect("mkdir");
    for pem in ["cacert.pem", "fedora-cert.pem", "fedora-key.pem"] {
        std::fs::copy(data().join(pem), upper.join(pem)).expect("copy certificate");
    }
    let script = format!(
        "mount -t overlay overlay -o lowerdir=/etc,upperdir={0}/upper,workdir={0}/work /etc && exec {BIN} check-config",
        work.path().display()
    );
    let output = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env("FEDORA_CI__BUS__CONFIG_FILE", data().join("fedora.toml"))
        .env_remove("FEDORA_CI_CONFIG")
        .output()
        .expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "check-config refused it: {stderr}");
    assert!(stderr.contains("configuration is valid"), "{stderr}");
    assert!(
        stdout.contains("amqps://fedora@rabbitmq.fedoraproject.org/%2Fpublic_pubsub"),
        "{stdout}"
    );
    assert!(stdout.contains("prefetch_count = 25"), "{stdout}");
    assert!(
        stdout.contains("\"#\""),
        "the binding to every topic: {stdout}"
    );
    assert!(
        stdout.contains("/etc/fedora-messaging/fedora-cert.pem"),
        "{stdout}"
    );
}
