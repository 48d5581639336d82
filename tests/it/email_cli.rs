//! The e-mail commands without a gateway: `leadgate parse --format email --explain`,
//! `leadgate parsers suggest` and the corpus score of `leadgate parsers test`.

use std::path::Path;
use std::process::Command;

fn leadgate(args: &[&str], cwd: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leadgate")).args(args).current_dir(cwd).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn empty_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leadgate.toml"), "").unwrap();
    dir
}

#[test]
fn explain_prints_where_each_field_came_from_and_the_review_verdict() {
    let tree = empty_tree();
    let config = tree.path().to_str().unwrap();
    let (ok, out, err) = leadgate(
        &[
            "parse",
            "--config",
            config,
            "--format",
            "email",
            "--explain",
            "tests/fixtures/email/corpus/15-no-labels-name-in-first-sentence.eml",
        ],
        root(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("read without a template"), "{out}");
    assert!(out.contains("free text") && out.contains("low"), "{out}");
    assert!(out.contains("needs review: every contact field was guessed"), "{out}");
    // The usual JSON line follows, without the review marker among the fields.
    let json = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["fields"]["email"], "rhea.k@mailbox.example");
    assert!(!json.contains("!review"), "{json}");

    let (ok, out, _) = leadgate(
        &[
            "parse",
            "--config",
            config,
            "--format",
            "email",
            "--explain",
            "tests/fixtures/email/corpus/10-html-table-cells-qp.eml",
        ],
        root(),
    );
    assert!(ok);
    assert!(
        out.contains("table cell") && out.contains("high") && out.contains("review: not needed"),
        "{out}"
    );
}

#[test]
fn suggest_writes_a_template_that_parsers_test_accepts_for_its_sample() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("samples")).unwrap();
    let sample = root().join("tests/fixtures/email/corpus/06-work-and-mobile-labels.eml");
    std::fs::copy(&sample, dir.path().join("samples/profinder.eml")).unwrap();
    let target = dir.path().join("profinder.toml");
    let (ok, out, err) =
        leadgate(&["parsers", "suggest", "-o", target.to_str().unwrap(), sample.to_str().unwrap()], root());
    assert!(ok, "{out}{err}");
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.contains("from = [\"*@profinder.example\"]"), "{text}");
    assert!(text.contains("label = \"Work\""), "{text}");
    // Never overwritten.
    let (ok, _, err) =
        leadgate(&["parsers", "suggest", "-o", target.to_str().unwrap(), sample.to_str().unwrap()], root());
    assert!(!ok && err.contains("never overwritten"), "{err}");

    // With its test filled in, `parsers test` passes on the sample.
    let filled = text.replace(
        "# [[tests]]\n# file = \"samples/profinder.eml\"   # copy the sample there\n# expect = { email = \"…\", phone = \"…\" }",
        "[[tests]]\nfile = \"samples/profinder.eml\"\nexpect = { first_name = \"Daniel\", last_name = \"Okafor\", email = \"d.okafor@mailbox.example\", phone = \"+12145550121\", phone_2 = \"+12145550188\", city = \"Plano\", state = \"TX\", postal_code = \"75024\", product = \"Kitchen remodel\" }",
    );
    assert_ne!(filled, text, "the commented test block changed shape:\n{text}");
    std::fs::write(&target, filled).unwrap();
    let tree = empty_tree();
    let (ok, out, err) = leadgate(
        &[
            "parsers",
            "test",
            "--config",
            tree.path().to_str().unwrap(),
            "--corpus",
            dir.path().to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("ok      profinder"), "{out}");
}

#[test]
fn parsers_test_scores_the_corpus_without_templates() {
    let tree = empty_tree();
    let (ok, out, err) = leadgate(&["parsers", "test", "--config", tree.path().to_str().unwrap()], root());
    assert!(ok, "{out}{err}");
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("corpus: "), "{out}");
    assert!(last.contains(" 0 wrong e-mails/phones"), "{last}");
}
