//! A real IMAP server (Dovecot from `scripts/dovecot`, named by LEADGATE_TEST_IMAP as
//! `imap://USER:PASSWORD@HOST:PORT`). Any user name logs in with the test password and
//! has its own Maildir, so each test takes a fresh user and sees only its own mail.

use std::time::Duration;

use async_imap::Session;
use futures_util::TryStreamExt;
use tokio::net::TcpStream;

use super::gateway::{Engine, Gateway, GatewayBuilder, drop_pg_database};

/// The test server.
#[derive(Debug, Clone)]
pub struct TestImap {
    pub host: String,
    pub port: u16,
    pub password: String,
}

impl TestImap {
    /// The server named by LEADGATE_TEST_IMAP (a failure when unset: the IMAP tests are
    /// `#[ignore]`d unless asked for).
    pub fn from_env() -> TestImap {
        let url = super::service_env("LEADGATE_TEST_IMAP");
        let rest = url.strip_prefix("imap://").expect("LEADGATE_TEST_IMAP is imap://user:password@host:port");
        let (creds, addr) = rest.rsplit_once('@').expect("credentials in LEADGATE_TEST_IMAP");
        let (_, password) = creds.split_once(':').expect("user:password in LEADGATE_TEST_IMAP");
        let (host, port) =
            addr.trim_end_matches('/').rsplit_once(':').expect("host:port in LEADGATE_TEST_IMAP");
        TestImap { host: host.into(), port: port.parse().expect("port"), password: password.into() }
    }

    /// A user nobody has used yet (its INBOX is empty).
    pub fn fresh_user(&self) -> String {
        format!("t{}", uuid::Uuid::now_v7().simple())
    }

    async fn session(&self, user: &str) -> Session<TcpStream> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await.expect("connect to Dovecot");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting").expect("greeting");
        client.login(user, &self.password).await.map_err(|(e, _)| e).expect("login")
    }

    /// APPENDs `raw` to `folder` (created if needed).
    pub async fn append(&self, user: &str, folder: &str, raw: &[u8]) {
        let mut s = self.session(user).await;
        let _exists = s.create(folder).await;
        s.append(folder, None, None, raw).await.expect("APPEND");
        s.logout().await.ok();
    }

    /// Deletes `folder` and creates it again: the server gives it a new UIDVALIDITY.
    pub async fn recreate(&self, user: &str, folder: &str) {
        let mut s = self.session(user).await;
        s.delete(folder).await.expect("DELETE");
        s.create(folder).await.expect("CREATE");
        s.logout().await.ok();
    }

    /// The messages in `folder` (none if it does not exist), in UID order.
    pub async fn messages(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        let mut s = self.session(user).await;
        if s.select(folder).await.is_err() {
            return Vec::new();
        }
        let uids = s.uid_search("ALL").await.expect("SEARCH");
        let mut uids: Vec<u32> = uids.into_iter().collect();
        uids.sort_unstable();
        let mut out = Vec::new();
        for uid in uids {
            let fetched: Vec<_> = s
                .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await
                .expect("FETCH")
                .try_collect()
                .await
                .expect("FETCH");
            out.extend(fetched.iter().filter_map(|f| f.body().map(<[u8]>::to_vec)));
        }
        s.logout().await.ok();
        out
    }

    /// Waits (deadline 20 s) until `folder` holds `n` messages; returns them.
    pub async fn wait_count(&self, user: &str, folder: &str, n: usize) -> Vec<Vec<u8>> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.messages(user, folder).await;
            if m.len() == n {
                return m;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{folder} holds {} messages, expected {n}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `[[mailboxes]]` entry for `user`, with `extra` lines appended to it.
    pub fn mailbox_toml(&self, user: &str, extra: &str) -> String {
        format!(
            "[[mailboxes]]\nhost = \"{}\"\nport = {}\ntls = \"none\"\nuser = \"{user}\"\n\
             password = \"${{LG_TEST_UNSET_IMAP:-{}}}\"\nprocessed_folder = \"processed\"\n\
             failed_folder = \"failed\"\nmax_backoff = \"500ms\"\n{extra}\n",
            self.host, self.port, self.password
        )
    }
}

/// Runs `test` once per engine, each with a fresh IMAP user and a gateway built by
/// `builder(user)`.
pub async fn each_engine_with_mailbox<B, F>(imap: &TestImap, builder: B, test: F)
where
    B: Fn(&str) -> GatewayBuilder,
    F: AsyncFn(&mut Gateway, &str),
{
    for engine in Engine::all() {
        let user = imap.fresh_user();
        let mut gw = builder(&user).engine(engine.clone()).start().await;
        eprintln!("engine: {engine:?}, imap user: {user}");
        test(&mut gw, &user).await;
        gw.stop().await;
        if let Engine::Postgres(server) = &engine {
            drop_pg_database(server, &gw.database_url).await;
        }
    }
}
