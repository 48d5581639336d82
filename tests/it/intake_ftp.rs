//! The FTP drop with curl as the vendor's client: plain FTP, FTPS, wrong password,
//! escaping the home directory, a file over the size limit.

use crate::support::each_engine;
use crate::support::files::{
    FTP_PASSWORD, FTP_USER, FileDirs, builder, curl, free_port, have_curl, read_results, self_signed_cert,
    wait_for_port,
};
use crate::support::sample;

fn login() -> String {
    format!("{FTP_USER}:{FTP_PASSWORD}")
}

fn sample_file(dirs: &FileDirs) -> String {
    let path = dirs.path("upload/leads.csv");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, sample("csv/leads.csv")).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn curl_uploads_over_plain_ftp_and_downloads_the_results() {
    if !have_curl() {
        return;
    }
    let dirs = FileDirs::new();
    let port = free_port();
    let b = builder(&format!("{}{}", dirs.files_toml(1000, 10_000_000), dirs.ftp_toml(port, None)));
    let file = sample_file(&dirs);
    each_engine(b, async |gw| {
        wait_for_port(port).await;
        let url = format!("ftp://127.0.0.1:{port}/leads.csv");
        let out = curl(&["--user", &login(), "-T", &file, &url]).await;
        assert!(out.status.success(), "upload: {}", String::from_utf8_lossy(&out.stderr));

        // 226 came after the commit: the results are there already.
        let got = dirs.path("download.csv");
        let out = curl(&[
            "--user",
            &login(),
            "-o",
            &got.display().to_string(),
            &format!("ftp://127.0.0.1:{port}/results/leads.csv"),
        ])
        .await;
        assert!(out.status.success(), "download: {}", String::from_utf8_lossy(&out.stderr));
        let rows = read_results(&got);
        let outcomes: Vec<&str> = rows.iter().map(|r| r["outcome"].as_str()).collect();
        assert_eq!(outcomes, ["accepted", "accepted", "rejected", "accepted", "duplicate"]);
        assert!(rows[3]["Notes"].starts_with("'="));
        let lead = gw.lead(&rows[0]["lead_id"]).await;
        assert_eq!(lead["fields"]["email"], "ava.lindqvist@example.com");
        // The upload itself is archived, not left in the vendor's home.
        assert!(!dirs.path("ftp/vendor/leads.csv").exists());

        // The same upload again: the same answers, no new leads.
        let out = curl(&["--user", &login(), "-T", &file, &url]).await;
        assert!(out.status.success());
        let again = crate::support::files::read_results(&dirs.path("ftp/vendor/results/leads.csv"));
        assert_eq!(again[0]["lead_id"], rows[0]["lead_id"]);
        assert_eq!(again[4]["outcome"], "duplicate");
    })
    .await;
}

#[tokio::test]
async fn curl_uploads_over_ftps_with_the_test_certificate_and_plain_ftp_is_refused() {
    if !have_curl() {
        return;
    }
    let dirs = FileDirs::new();
    let (cert, key) = self_signed_cert(dirs.dir.path());
    let port = free_port();
    let b = builder(&format!(
        "{}{}",
        dirs.files_toml(1000, 10_000_000),
        dirs.ftp_toml(port, Some((&cert, &key)))
    ));
    let file = sample_file(&dirs);
    let gw = b.start().await;
    wait_for_port(port).await;
    let url = format!("ftp://127.0.0.1:{port}/leads.csv");

    let plain = curl(&["--user", &login(), "-T", &file, &url]).await;
    assert!(!plain.status.success(), "plain FTP must be refused when TLS is configured");
    assert!(!dirs.path("ftp/vendor/results/leads.csv").exists());

    let cacert = cert.display().to_string();
    let out = curl(&["--ssl-reqd", "--cacert", &cacert, "--user", &login(), "-T", &file, &url]).await;
    assert!(out.status.success(), "FTPS upload: {}", String::from_utf8_lossy(&out.stderr));
    let rows = read_results(&dirs.path("ftp/vendor/results/leads.csv"));
    assert_eq!(rows.len(), 5);
    let lead = gw.lead(&rows[1]["lead_id"]).await;
    assert_eq!(lead["fields"]["state"], "CO");
    drop(gw);
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    if !have_curl() {
        return;
    }
    let dirs = FileDirs::new();
    let port = free_port();
    let b = builder(&format!("{}{}", dirs.files_toml(1000, 10_000_000), dirs.ftp_toml(port, None)));
    let file = sample_file(&dirs);
    let _gw = b.start().await;
    wait_for_port(port).await;
    let url = format!("ftp://127.0.0.1:{port}/leads.csv");
    for user in [format!("{FTP_USER}:not-the-password"), "nobody:whatever-password".to_owned()] {
        let out = curl(&["--user", &user, "-T", &file, &url]).await;
        assert_eq!(out.status.code(), Some(67), "login denied: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(!dirs.path("ftp/vendor/results").join("leads.csv").exists());
}

#[tokio::test]
async fn an_account_cannot_escape_its_directory() {
    if !have_curl() {
        return;
    }
    let dirs = FileDirs::new();
    let port = free_port();
    let b = builder(&format!("{}{}", dirs.files_toml(1000, 10_000_000), dirs.ftp_toml(port, None)));
    let file = sample_file(&dirs);
    let _gw = b.start().await;
    wait_for_port(port).await;
    std::fs::create_dir_all(dirs.path("ftp/other")).unwrap();
    std::fs::write(dirs.path("ftp/other/secret.csv"), "secret").unwrap();
    for method in ["multicwd", "nocwd", "singlecwd"] {
        for path in ["../escape.csv", "../other/escape.csv", "results/../../escape.csv"] {
            let url = format!("ftp://127.0.0.1:{port}/{path}");
            let out =
                curl(&["--path-as-is", "--ftp-method", method, "--user", &login(), "-T", &file, &url]).await;
            assert!(!out.status.success(), "{method} {path} must fail");
        }
        // Reading outside the home fails too.
        let url = format!("ftp://127.0.0.1:{port}/../other/secret.csv");
        let out = curl(&["--path-as-is", "--ftp-method", method, "--user", &login(), &url]).await;
        assert!(!out.status.success() || out.stdout.is_empty(), "{method}: read outside the home");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("secret"));
    }
    for p in ["escape.csv", "ftp/escape.csv", "ftp/other/escape.csv"] {
        assert!(!dirs.path(p).exists(), "{p} was written outside the home");
    }
    assert!(!dirs.path("ftp/vendor/results/escape.csv").exists());
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_refused_and_nothing_is_kept() {
    if !have_curl() {
        return;
    }
    let dirs = FileDirs::new();
    let port = free_port();
    let b = builder(&format!("{}{}", dirs.files_toml(1000, 100), dirs.ftp_toml(port, None)));
    let file = sample_file(&dirs);
    let gw = b.start().await;
    wait_for_port(port).await;
    let out = curl(&["--user", &login(), "-T", &file, &format!("ftp://127.0.0.1:{port}/leads.csv")]).await;
    assert!(!out.status.success(), "an upload over max_file_bytes must fail");
    // 552: curl reports it as "(70) Exceeded storage allocation".
    assert_eq!(out.status.code(), Some(70), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dirs.path("ftp/vendor/results/leads.csv").exists());
    let leftovers = std::fs::read_dir(dirs.path("work/vendor")).map(|d| d.flatten().count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "the partial upload is deleted");
    let subs = gw.get_admin("/v1/admin/submissions?source=vendor").await;
    assert!(!subs.text.contains("\"channel\":\"ftp\""), "{}", subs.text);
}
