//! Real `leadgate serve` processes (for tests that need several instances or a kill -9).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `leadgate serve` child process.
pub struct Instance {
    child: Child,
    pub addr: String,
}

impl Instance {
    /// Starts `leadgate serve` on the config tree and database, on an ephemeral port.
    pub fn start(config_dir: &Path, database_url: &str) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_leadgate"))
            .arg("serve")
            .arg("--config")
            .arg(config_dir)
            .args(["--listen", "127.0.0.1:0", "--database", database_url])
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("instance exited before listening").unwrap();
            if let Some(i) = line.find("addr=") {
                break line[i + 5..].split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining the log (a full pipe would block the instance); shown on failure.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("[instance] {line}");
            }
        });
        Instance { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `kill -9`: no shutdown, leases left behind.
    pub fn kill(mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// SIGTERM and wait; returns whether it exited 0.
    pub fn stop(mut self) -> bool {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        ok && self.child.wait().is_ok_and(|s| s.success())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
