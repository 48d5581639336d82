//! File intake helpers: a vendor source with an FTP account, file settings for a
//! gateway under test, curl as the FTP client, results-file reading.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::GatewayBuilder;

/// The FTP account of the `vendor` source.
pub const FTP_USER: &str = "vendor";
pub const FTP_PASSWORD: &str = "vendor-ftp-password";

/// Directories for file intake, in a temp dir the test holds.
pub struct FileDirs {
    pub dir: tempfile::TempDir,
}

impl FileDirs {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `[files]` TOML pointing into this temp dir.
    pub fn files_toml(&self, chunk_rows: usize, max_file_bytes: u64) -> String {
        format!(
            "[files]\nwork_dir = \"{}\"\narchive_dir = \"{}\"\nchunk_rows = {chunk_rows}\nmax_file_bytes = {max_file_bytes}\n",
            self.path("work").display(),
            self.path("archive").display()
        )
    }

    /// `[drop_dir]` TOML with short timings.
    pub fn drop_dir_toml(&self) -> String {
        format!(
            "[drop_dir]\nenabled = true\nroot = \"{}\"\nsettle = \"150ms\"\npoll = \"100ms\"\n",
            self.path("drop").display()
        )
    }

    /// `[ftp]` TOML on `port`; TLS when `tls` holds (cert, key) paths.
    pub fn ftp_toml(&self, port: u16, tls: Option<(&Path, &Path)>) -> String {
        let passive = 20000 + (port % 20) * 1000;
        let mut t = format!(
            "[ftp]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\nroot = \"{}\"\npassive_ports = [{passive}, {}]\n",
            self.path("ftp").display(),
            passive + 999
        );
        match tls {
            Some((cert, key)) => {
                t.push_str(&format!("tls_cert = \"{}\"\ntls_key = \"{}\"\n", cert.display(), key.display()))
            }
            None => t.push_str("allow_plain = true\n"),
        }
        t
    }
}

/// The `vendor` source: e-mail or phone required, an FTP account from the environment
/// (its default), dedupe on e-mail or phone.
pub fn vendor_source() -> String {
    format!(
        "keys = [\"${{LG_TEST_UNSET_VENDOR_KEY:-vendor-api-key}}\"]\n\
         [validate]\nrequired = [\"email or phone\"]\n\
         [ftp]\nuser = \"{FTP_USER}\"\npassword = \"${{LG_TEST_UNSET_FTP:-{FTP_PASSWORD}}}\"\n"
    )
}

/// A gateway builder with the vendor source and `extra` main-file TOML.
pub fn builder(extra: &str) -> GatewayBuilder {
    GatewayBuilder::new().source("vendor", &vendor_source()).main(extra)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Whether curl (with FTP) is installed; prints why a test skips otherwise.
pub fn have_curl() -> bool {
    let ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("ftp"));
    if !ok {
        super::skip("curl with FTP support is not installed");
    }
    ok
}

/// Runs curl with `args` (plus `--silent --show-error`), with a 60 s cap. Async: the
/// gateway under test runs on the same (single-threaded) test runtime.
pub async fn curl(args: &[&str]) -> Output {
    tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60", "--noproxy", "*"])
        .args(args)
        .output()
        .await
        .expect("curl runs")
}

/// Polls until `path` exists (deadline 60 s).
pub async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A results file as rows of column → value.
pub fn read_results(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(path).expect("results file");
    let headers: Vec<String> = reader.headers().expect("header").iter().map(str::to_owned).collect();
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            headers.iter().cloned().zip(r.iter().map(str::to_owned)).collect()
        })
        .collect()
}

/// A self-signed certificate for 127.0.0.1/localhost: (cert.pem, key.pem) in `dir`.
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("certificate");
    let (cert_path, key_path) = (dir.join("ftp.crt"), dir.join("ftp.key"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

/// Counts rows of `table` in the database at `url` (read-only side channel for tests).
pub async fn count(url: &str, sql: &str) -> i64 {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    let n: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut conn).await.expect("count");
    conn.close().await.ok();
    n
}

/// Waits until something accepts connections on `port` (the FTP channel starts just
/// after the gateway).
pub async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
