//! `leadgate check` and `serve` on good and bad config trees (the real binary).

use std::path::Path;
use std::process::Command;

fn leadgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leadgate"))
}

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

#[test]
fn the_example_config_passes_check() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let out = leadgate().arg("check").arg("--config").arg(&example).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("OK (1 sources)"), "{stdout}");
    assert!(
        stdout.contains("warning: Source example accepts the example default key: set LEADGATE_EXAMPLE_KEY."),
        "the warning names the variable to set: {stdout}"
    );
    assert!(stdout.contains("The admin key is the example default: set LEADGATE_ADMIN_KEY."), "{stdout}");
}

#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    // `leadgate check | head -0`: the pipe is closed before the command writes a line.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut child = leadgate()
        .arg("check")
        .arg("--config")
        .arg(&example)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}

#[test]
fn check_names_file_line_and_field_of_every_problem() {
    let dir = tree(&[
        ("leadgate.toml", "[server]\nlisten = \"127.0.0.1:0\"\nmax_body_bytez = 5\n"),
        ("sources/a.toml", "keys = [\"plaintext-key\"]\n[validate]\nrequired = [\"emial\"]\n"),
        ("sources/b.toml", "keys = [\"${LG_CHECK_UNSET_VAR}\"]\n"),
        ("sources/c.toml", "default_region = \"USA\"\n[dedupe]\nkeys = [[\"email\"]]\nwindow = \"30x\"\n"),
    ]);
    let out = leadgate().arg("check").arg("--config").arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    let lines: Vec<&str> = stdout.lines().collect();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has("leadgate.toml:3:1: unknown field `max_body_bytez`"), "{stdout}");
    assert!(has("sources/a.toml: keys[0]: API keys must be written as `sha256:<hex>`"), "{stdout}");
    assert!(has("sources/a.toml: validate.required: unknown field \"emial\""), "{stdout}");
    assert!(has("sources/b.toml:1:8: environment variable LG_CHECK_UNSET_VAR is not set"), "{stdout}");
    assert!(has("sources/c.toml:4:10: invalid duration \"30x\""), "{stdout}");
    assert!(stdout.contains("problem(s)"), "{stdout}");
}

#[test]
fn serve_refuses_an_invalid_tree_with_the_same_messages() {
    let dir = tree(&[("leadgate.toml", "[server]\nlisten = 5\n")]);
    let out = leadgate().arg("serve").arg("--config").arg(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("leadgate.toml:2:10: invalid type"), "{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
}

#[test]
fn keys_new_prints_a_key_and_a_hash_that_check_accepts() {
    let out = leadgate().args(["keys", "new"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let hash = stdout.lines().find_map(|l| l.strip_prefix("hash: ")).unwrap().to_string();
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
    let dir = tree(&[("leadgate.toml", ""), ("sources/v.toml", &format!("keys = [\"{hash}\"]\n"))]);
    let out = leadgate().arg("check").arg("--config").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn parse_prints_one_json_line_per_lead_and_fails_on_bad_input() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples/http/json_lead.json");
    let out = leadgate()
        .arg("parse")
        .arg("--config")
        .arg(&example)
        .args(["--format", "json"])
        .arg(&sample)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["fields"]["email"], "mj.oneil@example.com");
    assert_eq!(line["reasons"], serde_json::json!([]));

    let dir = tree(&[("bad.json", "{\"a\": }")]);
    let out = leadgate()
        .arg("parse")
        .arg("--config")
        .arg(&example)
        .args(["--format", "json"])
        .arg(dir.path().join("bad.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1, column 7"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cel_errors_point_at_the_files_line_and_column() {
    let dir = tree(&[
        ("leadgate.toml", ""),
        (
            "buyers/b.toml",
            "delivery = \"webhook\"\nfilter = \"lead.state == )\"\n[webhook]\nurl = \"https://b.example/leads\"\n",
        ),
        (
            "routes.toml",
            "# routes\n[[route]]\nname = \"one\"\nbuyers = [\"b\"]\nwhen = \"\"\"\nlead.state == \"CA\" &&\n  lead.score >< 5\"\"\"\n",
        ),
    ]);
    let out = leadgate().arg("check").arg("--config").arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    // `)` is the 15th character of the expression, which starts at column 11 of line 2.
    assert!(stdout.contains("buyers/b.toml:2:25: filter: Syntax error: mismatched input ')'"), "{stdout}");
    // The expression's second line is the file's seventh; the extra `<` is its 15th character.
    assert!(
        stdout.contains("routes.toml:7:15: route[0] (one).when: Syntax error: extraneous input '<'"),
        "{stdout}"
    );
    assert!(!stdout.contains("line 2, column"), "no positions inside the expression: {stdout}");
}

#[test]
fn completions_and_the_man_page_are_printed() {
    for (shell, marker) in
        [("bash", "complete -F"), ("zsh", "#compdef leadgate"), ("fish", "complete -c leadgate")]
    {
        let out = leadgate().args(["completions", shell]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("redeliver") && text.contains("import"), "{shell} completes subcommands");
    }
    let out = leadgate().arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(page.starts_with(".ie") || page.contains(".TH leadgate"), "{page}");
    assert!(page.contains("Lead\\-ingestion gateway") || page.contains("Lead-ingestion gateway"), "{page}");
    assert!(page.contains("completions"), "lists the subcommands: {page}");
}
