//! The `cxstream` binary's contract with users: clear errors for bad
//! configuration and missing secrets.

use std::process::Command;

fn cxstream() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cxstream"))
}

#[test]
fn run_refuses_to_start_without_a_masking_key() {
    let out = run_silver_without_a_key().output().expect("run cxstream");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CXSTREAM_MASKING_KEY") && err.contains("--masking-key-file"),
        "{err}"
    );
}

#[test]
fn run_refuses_an_empty_or_white_space_masking_key_and_names_its_source() {
    let dir = std::env::temp_dir().join(format!("cxstream-cli-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("blank.key");
    std::fs::write(&file, " \t \n").unwrap();
    let run = |env: Option<&str>, file: Option<&std::path::Path>| {
        let mut cmd = run_silver_without_a_key();
        if let Some(v) = env {
            cmd.env("CXSTREAM_MASKING_KEY", v);
        }
        if let Some(f) = file {
            cmd.arg("--masking-key-file").arg(f);
        }
        let out = cmd.output().expect("run cxstream");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for v in ["", "   ", "\n"] {
        let err = run(Some(v), None);
        assert!(
            err.contains("the masking key in CXSTREAM_MASKING_KEY is empty or only white space")
                && err.contains("--masking-key-file"),
            "{v:?}: {err}"
        );
    }
    let err = run(Some("a-real-env-key"), Some(&file));
    assert!(
        err.contains(&format!(
            "the masking key in the --masking-key-file {} is empty or only white space",
            file.display()
        )) && err.contains("CXSTREAM_MASKING_KEY"),
        "{err}"
    );
    assert!(!err.contains("a-real-env-key"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validate_names_the_bad_key_and_its_line() {
    let dir = std::env::temp_dir().join(format!("cxstream-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .unwrap();
    let bad = shipped.replacen("idle_timeout = \"2s\"", "idle_timout = \"2s\"", 1);
    let line = bad
        .lines()
        .position(|l| l.starts_with("idle_timout"))
        .unwrap()
        + 1;
    let path = dir.join("bad.toml");
    std::fs::write(&path, bad).unwrap();
    let out = cxstream()
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run cxstream");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("idle_timout") && err.contains(&format!("line {line}")),
        "{err}"
    );

    let ok = cxstream()
        .args(["validate", "topologies/genesys-silver.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cxstream");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = String::from_utf8_lossy(&ok.stdout);
    for line in [
        "stage silver (kind silver):",
        "  group:       <group id>.silver",
        "  input:       genesys.bronze.events",
        "  port silver: cx.silver.events (json)",
        "  port late:   cx.silver.late (json)",
        "  chain:       decode -> filter -> dedup -> reorder -> mask -> lineage",
        "  changelog:   cx.internal.genesys-silver.changelog",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} in {out}");
    }
}

/// `--stage` names a stage of the topology; an unknown one is refused
/// with the stages there are, before anything else happens.
#[test]
fn run_refuses_an_unknown_stage_and_lists_the_stages() {
    let out = run_silver_without_a_key()
        .args(["--stage", "platinum"])
        .env("CXSTREAM_MASKING_KEY", "a-key")
        .output()
        .expect("run cxstream");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "--stage platinum: topologies/genesys-silver.toml has no such stage; its stages: silver, gold, process"
        ),
        "{err}"
    );
}

/// `cxstream run` of the silver topology against an unreachable broker, with
/// no masking key in the environment: start-up must stop before any network.
fn run_silver_without_a_key() -> std::process::Command {
    let mut cmd = cxstream();
    cmd.args([
        "run",
        "--topology",
        "topologies/genesys-silver.toml",
        "--brokers",
        "127.0.0.1:1",
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .env_remove("CXSTREAM_MASKING_KEY");
    cmd
}

#[test]
fn export_refuses_a_time_that_is_not_iso_8601_and_names_the_flag() {
    let out = cxstream()
        .args([
            "export",
            "xes",
            "--brokers",
            "127.0.0.1:1",
            "--out",
            "never-written.xes",
            "--from",
            "yesterday",
        ])
        .output()
        .expect("run cxstream");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--from") && err.contains("ISO-8601"), "{err}");
    assert!(!std::path::Path::new("never-written.xes").exists());
}

/// A topology with an audit stage after the shipped one, in a file.
fn audit_topology(dir: &std::path::Path) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    let text = shipped
        + r#"
[[stages]]
name = "audit"
kind = "audit"
inputs = ["cx.silver.events"]
dead_letter = "cx.dlq"
[stages.ports]
events = { topic = "cx.audit.events", format = "json" }
checkpoints = { topic = "cx.audit.checkpoints", format = "json" }
[stages.internal]
repartition = "cx.internal.genesys-silver.audit.repartition"
changelog = "cx.internal.genesys-silver.audit.changelog"
"#;
    let path = dir.join("audit.toml");
    std::fs::write(&path, text).expect("topology");
    path
}

#[test]
fn an_audit_stage_does_not_start_without_its_signing_key_and_keygen_writes_one() {
    let dir = std::env::temp_dir().join(format!("cxstream-cli-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let topology = audit_topology(&dir);
    let run = |key: Option<&std::path::Path>| {
        let mut cmd = cxstream();
        cmd.args([
            "run",
            "--brokers",
            "127.0.0.1:1",
            "--stage",
            "audit",
            "--topology",
        ])
        .arg(&topology)
        .env("CXSTREAM_MASKING_KEY", "k")
        .env_remove("CXSTREAM_AUDIT_KEY_FILE");
        if let Some(k) = key {
            cmd.arg("--audit-key-file").arg(k);
        }
        let out = cmd.output().expect("run cxstream");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(None);
    assert!(
        err.contains("--audit-key-file")
            && err.contains("CXSTREAM_AUDIT_KEY_FILE")
            && err.contains("keygen"),
        "{err}"
    );
    let bad = dir.join("not-a-key.pem");
    std::fs::write(
        &bad,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("bad key");
    let err = run(Some(&bad));
    assert!(
        err.contains("not-a-key.pem") && err.contains("PKCS#8"),
        "{err}"
    );
    assert!(!err.contains("AAAA"), "key bytes in an error: {err}");

    let out = cxstream()
        .args(["audit", "keygen", "--out"])
        .arg(&dir)
        .output()
        .expect("keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.join("audit-signing-key.pem").exists()
            && dir.join("audit-signing-key.pub.pem").exists()
    );
    let again = cxstream()
        .args(["audit", "keygen", "--out"])
        .arg(&dir)
        .output()
        .expect("keygen");
    assert!(!again.status.success(), "keygen overwrote a key");
    let _ = std::fs::remove_dir_all(&dir);
}
